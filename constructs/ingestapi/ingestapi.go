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
	"github.com/tributary/tributary/internal/nag"
)

// DefaultStageName is the API Gateway stage, and the last part of the URL's path prefix.
const DefaultStageName = "PROD"

// Stage names also end up in stack names, which allow only letters, digits and hyphens.
var stageNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// PartitionKeyHeader lets a client choose the Kinesis partition key (1 to 256
// characters) to keep related events in order on one shard.
const PartitionKeyHeader = "X-Partition-Key"

// How the account-wide API Gateway CloudWatch Logs role, which execution
// logging needs, is provided. It is one setting per account and Region.
const (
	// CreateCloudWatchRole creates a role and sets it as the account's (the
	// role is kept when the stack is deleted, so other APIs keep logging).
	CreateCloudWatchRole = "CREATE"
	// ExistingCloudWatchRole leaves the account setting alone: it must already
	// name a role, or the stage cannot be created.
	ExistingCloudWatchRole = "EXISTING"
)

// Stage throttling. The defaults fit one shard; the app derives them from the
// stream's write capacity. API Gateway's account limits are 10,000 requests/s
// with a burst of 5,000.
const (
	DefaultThrottleRate  = 1000
	DefaultThrottleBurst = 1000
	MaxThrottleRate      = 10000
	MaxThrottleBurst     = 5000
)

// Props configures the ingest API. Empty and nil fields mean the documented default.
type Props struct {
	Stream awskinesis.IStream // required
	// StageName is the deployment stage. Default: PROD.
	StageName string
	// LogRetentionDays for the access and execution log groups. Default: logretention.Default.
	LogRetentionDays *int
	// CloudWatchRole is CreateCloudWatchRole or ExistingCloudWatchRole. Default: CreateCloudWatchRole.
	CloudWatchRole string
	// ThrottleRate and ThrottleBurst limit the stage, in requests per second;
	// past them clients get 429. Defaults: DefaultThrottleRate, DefaultThrottleBurst.
	ThrottleRate, ThrottleBurst *int
}

type resolved struct {
	stageName, cloudWatchRole   string
	logRetention                awslogs.RetentionDays
	throttleRate, throttleBurst int
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
	r.cloudWatchRole = CreateCloudWatchRole
	if p.CloudWatchRole != "" {
		r.cloudWatchRole = p.CloudWatchRole
	}
	if err = check.OneOf("apiCloudWatchRole", r.cloudWatchRole, CreateCloudWatchRole, ExistingCloudWatchRole); err != nil {
		return
	}
	r.throttleRate, r.throttleBurst = DefaultThrottleRate, DefaultThrottleBurst
	if p.ThrottleRate != nil {
		r.throttleRate = *p.ThrottleRate
	}
	if p.ThrottleBurst != nil {
		r.throttleBurst = *p.ThrottleBurst
	}
	if err = check.IntRange("apiThrottleRate", r.throttleRate, 1, MaxThrottleRate); err != nil {
		return
	}
	if err = check.IntRange("apiThrottleBurst", r.throttleBurst, 1, MaxThrottleBurst); err != nil {
		return
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
	// ExecutionLogs is the group API Gateway writes execution errors to,
	// created here so that it has a retention.
	ExecutionLogs awslogs.LogGroup
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
		CloudWatchRole: jsii.Bool(r.cloudWatchRole == CreateCloudWatchRole),
		DeployOptions: &awsapigateway.StageOptions{
			StageName: jsii.String(r.stageName),
			// Errors only, and never request or response bodies: events are the user's data.
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			DataTraceEnabled:     jsii.Bool(false),
			ThrottlingRateLimit:  jsii.Number(r.throttleRate),
			ThrottlingBurstLimit: jsii.Number(r.throttleBurst),
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

	// API Gateway would create this group on first use, without a retention.
	executionLogs := awslogs.NewLogGroup(c, jsii.String("ExecutionLogs"), &awslogs.LogGroupProps{
		LogGroupName: jsii.String("API-Gateway-Execution-Logs_" + *api.RestApiId() + "/" + r.stageName),
		Retention:    r.logRetention,
	})
	api.DeploymentStage().Node().AddDependency(executionLogs)
	if role := api.Node().TryFindChild(jsii.String("CloudWatchRole")); role != nil {
		nag.Suppress(role, "AwsSolutions-IAM4",
			"The account-wide API Gateway logging role uses the AWS managed policy made for it, which lets API Gateway create and write its own log groups.",
			"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
	}
	nag.Suppress(api.DeploymentStage(), "AwsSolutions-APIG3",
		"Every method requires SigV4 (IAM) signatures from principals of this account, which API Gateway checks before any integration runs, and stage throttling bounds the request rate; a WAF web ACL would add cost without a rule that applies.")

	role := awsiam.NewRole(c, jsii.String("KinesisWriteRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("apigateway.amazonaws.com"), nil),
		Description: jsii.String("Lets the ingest API put records to its own stream, nothing else"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kinesis:PutRecord"),
		Resources: jsii.Strings(*props.Stream.StreamArn()),
	}))
	if key := props.Stream.EncryptionKey(); key != nil {
		// Writing to a stream encrypted with a customer key needs a data key from it.
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("kms:GenerateDataKey"),
			Resources: jsii.Strings(*key.KeyArn()),
		}))
	}

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
	post := events.AddMethod(jsii.String("POST"), integration, &awsapigateway.MethodOptions{
		AuthorizationType: awsapigateway.AuthorizationType_IAM,
		RequestValidator:  validator,
		RequestModels:     &map[string]awsapigateway.IModel{"application/json": eventModel},
		RequestParameters: &map[string]*bool{"method.request.header." + PartitionKeyHeader: jsii.Bool(false)},
		MethodResponses: &[]*awsapigateway.MethodResponse{
			{StatusCode: jsii.String("200")}, {StatusCode: jsii.String("400")},
			{StatusCode: jsii.String("429")}, {StatusCode: jsii.String("500")},
		},
	})
	nag.Suppress(post, "AwsSolutions-COG4",
		"Producers are machines signing with SigV4 (AWS_IAM authorization); there are no end users to sign in to a Cognito user pool.")
	return &IngestAPI{Construct: c, Api: api, Role: role, Events: events, AccessLogs: accessLogs, ExecutionLogs: executionLogs}
}
