// Package ingestapi is the API Gateway REST API that stores posted JSON events
// in the Kinesis stream through an AWS-service integration (no Lambda).
package ingestapi

import (
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/internal/check"
	"github.com/tributary/tributary/internal/logretention"
)

// DefaultStageName is the API Gateway stage, and the last part of the URL's path prefix.
const DefaultStageName = "PROD"

// Stage names also end up in stack names, which allow only letters, digits and hyphens.
var stageNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// PartitionKeyHeader lets a client choose the Kinesis partition key (1 to 256
// characters) to keep related events in order on one shard.
const PartitionKeyHeader = "X-Partition-Key"

// Props configures the ingest API. Empty and nil fields mean the documented default.
type Props struct {
	Stream awskinesis.IStream // required
	// StageName is the deployment stage. Default: PROD.
	StageName string
	// LogRetentionDays for the access log group. Default: logretention.Default.
	LogRetentionDays *int
}

type resolved struct {
	stageName    string
	logRetention awslogs.RetentionDays
}

// Validate reports the first setting that is not allowed.
func (p Props) Validate() error {
	_, err := p.resolve()
	return err
}

func (p Props) resolve() (r resolved, err error) {
	r.stageName = DefaultStageName
	if p.StageName != "" {
		r.stageName = p.StageName
	}
	if !stageNamePattern.MatchString(r.stageName) {
		return r, check.Invalid("stageName", r.stageName, "1 to 64 letters, digits and hyphens, starting with a letter or digit")
	}
	days := logretention.Default
	if p.LogRetentionDays != nil {
		days = *p.LogRetentionDays
	}
	r.logRetention, err = logretention.Of(days)
	return
}

// IngestAPI wraps the REST API and what it writes with.
type IngestAPI struct {
	constructs.Construct
	Api awsapigateway.RestApi
	// Role is what API Gateway assumes to call Kinesis: PutRecord on this stream only.
	Role awsiam.Role
	// Events is the /v1 resource.
	Events awsapigateway.Resource
	// AccessLogs receives one JSON line per request.
	AccessLogs awslogs.LogGroup
}

// New creates the API. It panics with a one-line message if props are invalid.
func New(scope constructs.Construct, id string, props *Props) *IngestAPI {
	if props == nil || props.Stream == nil {
		panic("ingestapi: Stream is required")
	}
	r, err := props.resolve()
	if err != nil {
		panic(err.Error())
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	accessLogs := awslogs.NewLogGroup(c, jsii.String("AccessLogs"), &awslogs.LogGroupProps{Retention: r.logRetention})

	api := awsapigateway.NewRestApi(c, jsii.String("Api"), &awsapigateway.RestApiProps{
		RestApiName: jsii.String(*awscdk.Stack_Of(c).StackName() + "-ingest"),
		Description: jsii.String("Tributary ingest API: stores posted JSON events in Kinesis"),
		EndpointConfiguration: &awsapigateway.EndpointConfiguration{
			Types: &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		},
		// The account-wide CloudWatch role is one setting per Region; this stack does not overwrite it.
		CloudWatchRole: jsii.Bool(false),
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String(r.stageName),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat: awsapigateway.AccessLogFormat_JsonWithStandardFields(&awsapigateway.JsonWithStandardFieldProps{
				Caller: jsii.Bool(true), HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true),
				RequestTime: jsii.Bool(true), ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true),
				Status: jsii.Bool(true), User: jsii.Bool(true),
			}),
		},
	})

	// The stack publishes the /v1 URL itself; the root URL output would only mislead.
	api.Node().TryRemoveChild(jsii.String("Endpoint"))

	role := awsiam.NewRole(c, jsii.String("KinesisWriteRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("apigateway.amazonaws.com"), nil),
		Description: jsii.String("Lets the ingest API put records to its own stream, nothing else"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kinesis:PutRecord"),
		Resources: jsii.Strings(*props.Stream.StreamArn()),
	}))

	eventModel := api.AddModel(jsii.String("Event"), &awsapigateway.ModelOptions{
		ContentType: jsii.String("application/json"),
		Description: jsii.String("One event: a JSON object"),
		Schema: &awsapigateway.JsonSchema{
			Schema: awsapigateway.JsonSchemaVersion_DRAFT4,
			Title:  jsii.String("Event"),
			Type:   awsapigateway.JsonSchemaType_OBJECT,
		},
	})
	validator := api.AddRequestValidator(jsii.String("BodyValidator"), &awsapigateway.RequestValidatorOptions{
		ValidateRequestBody:       jsii.Bool(true),
		ValidateRequestParameters: jsii.Bool(true),
	})

	json := func(s string) *map[string]*string { return &map[string]*string{"application/json": jsii.String(s)} }
	integration := awsapigateway.NewAwsIntegration(&awsapigateway.AwsIntegrationProps{
		Service:               jsii.String("kinesis"),
		Action:                jsii.String("PutRecord"),
		IntegrationHttpMethod: jsii.String("POST"),
		Options: &awsapigateway.IntegrationOptions{
			CredentialsRole: role,
			// NEVER answers 415 for a Content-Type without a template instead of
			// passing a raw body to Kinesis.
			PassthroughBehavior: awsapigateway.PassthroughBehavior_NEVER,
			RequestParameters: &map[string]*string{
				"integration.request.header.Content-Type": jsii.String("'application/x-amz-json-1.1'"),
			},
			RequestTemplates: json(PutRecordTemplate(*props.Stream.StreamName())),
			// Without explicit patterns every Kinesis error would reach the client as 200.
			IntegrationResponses: &[]*awsapigateway.IntegrationResponse{
				{StatusCode: jsii.String("200"), SelectionPattern: jsii.String(`2\d{2}`), ResponseTemplates: json(putRecordSuccessTemplate)},
				{StatusCode: jsii.String("400"), SelectionPattern: jsii.String(`4\d{2}`), ResponseTemplates: json(kinesisClientErrorTemplate)},
				{StatusCode: jsii.String("500"), ResponseTemplates: json(backendErrorTemplate)},
			},
		},
	})

	events := api.Root().AddResource(jsii.String("v1"), nil)
	events.AddMethod(jsii.String("POST"), integration, &awsapigateway.MethodOptions{
		AuthorizationType: awsapigateway.AuthorizationType_IAM,
		RequestValidator:  validator,
		RequestModels:     &map[string]awsapigateway.IModel{"application/json": eventModel},
		RequestParameters: &map[string]*bool{"method.request.header." + PartitionKeyHeader: jsii.Bool(false)},
		MethodResponses: &[]*awsapigateway.MethodResponse{
			{StatusCode: jsii.String("200")}, {StatusCode: jsii.String("400")},
			{StatusCode: jsii.String("429")}, {StatusCode: jsii.String("500")},
		},
	})
	return &IngestAPI{Construct: c, Api: api, Role: role, Events: events, AccessLogs: accessLogs}
}
