// Package pipeline is the stack that holds the whole collection path:
// ingest API -> Kinesis stream -> Firehose -> S3.
package pipeline

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/constructs/deliverystream"
	"github.com/tributary/tributary/constructs/ingestapi"
	"github.com/tributary/tributary/constructs/rawbucket"
	"github.com/tributary/tributary/constructs/stream"
	"github.com/tributary/tributary/internal/stack"
)

// Stack is the pipeline stack with its parts exposed for extension and tests.
type Stack struct {
	awscdk.Stack
	Bucket         *rawbucket.RawBucket
	Stream         *stream.Stream
	DeliveryStream *deliverystream.DeliveryStream
	IngestAPI      *ingestapi.IngestAPI
}

// exampleEvent is what the example request posts.
const exampleEvent = `{"value":"30","type":"Tip 3"}`

// New builds the stack named cfg.StackName().
func New(scope constructs.Construct, cfg config.Config, props *awscdk.StackProps) *Stack {
	s := stack.New(scope, cfg.StackName(), "Tributary: JSON events over HTTPS into Kinesis, delivered by Firehose to S3", props)

	bucket := rawbucket.New(s, "RawData", ptr(cfg.BucketProps()))
	str := stream.New(s, "Events", ptr(cfg.StreamProps()))
	dp := cfg.DeliveryStreamProps()
	dp.Source, dp.Bucket = str.Stream, bucket.Bucket
	delivery := deliverystream.New(s, "Delivery", &dp)
	ap := cfg.IngestAPIProps()
	ap.Stream = str.Stream
	api := ingestapi.New(s, "Ingest", &ap)

	url := api.Api.UrlForPath(jsii.String("/v1"))
	output(s, "IngestUrl", url, "POST one JSON event here")
	output(s, "IngestBatchUrl", api.Api.UrlForPath(jsii.String("/v1/batch")), "POST a JSON array of 1 to 500 events here")
	output(s, "StreamName", str.Stream.StreamName(), "Kinesis data stream that buffers the events")
	output(s, "DeliveryStreamName", delivery.DeliveryStream.DeliveryStreamName(), "Firehose delivery stream that writes them to S3")
	output(s, "BucketName", bucket.Bucket.BucketName(), "S3 bucket; events land under the data prefix in UTC hour folders")
	output(s, "DataPrefix", jsii.String(delivery.DataPrefix), "Where events land in the bucket, followed by yyyy/MM/dd/HH/ (UTC)")
	if api.APIKey != nil {
		output(s, "ApiKeyId", api.APIKey.KeyId(), "API key for producers (x-api-key header); its value: aws apigateway get-api-key --include-value --api-key <id>")
	}
	output(s, "ExampleRequest", exampleRequest(api, url), "Posts one event")
	stack.Finish(s, cfg.Retain())
	return &Stack{Stack: s, Bucket: bucket, Stream: str, DeliveryStream: delivery, IngestAPI: api}
}

// exampleRequest is a curl command that posts one event the way the API's
// authorization mode wants it.
func exampleRequest(api *ingestapi.IngestAPI, url *string) *string {
	auth := ""
	switch api.Auth {
	case ingestapi.AuthAPIKey:
		auth = fmt.Sprintf(`-H "x-api-key: $(aws apigateway get-api-key --include-value --query value --output text --api-key %s)" `, *api.APIKey.KeyId())
	case ingestapi.AuthIAM:
		// Credentials from the environment (aws configure export-credentials --format env).
		auth = fmt.Sprintf(`--aws-sigv4 "aws:amz:%s:execute-api" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN" `, *awscdk.Aws_REGION())
	}
	return jsii.String(fmt.Sprintf(`curl -sS --fail-with-body %s-H "Content-Type: application/json" -d '%s' %s`, auth, exampleEvent, *url))
}

func output(s awscdk.Stack, id string, value *string, description string) {
	awscdk.NewCfnOutput(s, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
}

func ptr[T any](v T) *T { return &v }
