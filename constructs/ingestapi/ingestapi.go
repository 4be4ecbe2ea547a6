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

// Authorization modes.
const (
	// AuthIAM requires SigV4 signatures (service execute-api) from principals
	// allowed execute-api:Invoke.
	AuthIAM = "IAM"
	// AuthAPIKey requires an x-api-key header with a key of the API's usage plan.
	AuthAPIKey = "API_KEY"
	// AuthNone lets anyone who knows the URL write events; synth warns.
	AuthNone = "NONE"
)

// MaxBatch is the most events one /v1/batch request may carry: Kinesis
// PutRecords takes at most 500 records.
const MaxBatch = 500

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
	// Auth is AuthIAM, AuthAPIKey or AuthNone. Default: AuthIAM.
	Auth string
	// Tracing turns on AWS X-Ray tracing for the stage. Default: off.
	Tracing bool
	// EndpointType is REGIONAL (producers in the Region) or EDGE (through
	// CloudFront, for producers far away). Default: REGIONAL.
	EndpointType string
}

type resolved struct {
	stageName, cloudWatchRole, auth, endpointType string
	logRetention                                  awslogs.RetentionDays
	throttleRate, throttleBurst                   int
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
	r.auth = AuthIAM
	if p.Auth != "" {
		r.auth = p.Auth
	}
	if err = check.OneOf("apiAuth", r.auth, AuthIAM, AuthAPIKey, AuthNone); err != nil {
		return
	}
	r.endpointType = string(awsapigateway.EndpointType_REGIONAL)
	if p.EndpointType != "" {
		r.endpointType = p.EndpointType
	}
	if err = check.OneOf("apiEndpointType", r.endpointType, "REGIONAL", "EDGE"); err != nil {
		return
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
	// Events is the /v1 resource (one event), Batch /v1/batch (up to 500).
	Events, Batch awsapigateway.Resource
	// InvokeArns are the execute-api ARNs of POST /v1 and POST /v1/batch on
	// the stage: what a producer's role may invoke.
	InvokeArns []*string
	// Auth is the authorization mode in force; APIKey is the usage plan's key
	// with AuthAPIKey, else nil.
	Auth   string
	APIKey awsapigateway.IApiKey
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
			Types: &[]awsapigateway.EndpointType{awsapigateway.EndpointType(r.endpointType)},
		},
		CloudWatchRole: jsii.Bool(r.cloudWatchRole == CreateCloudWatchRole),
		DeployOptions: &awsapigateway.StageOptions{
			StageName: jsii.String(r.stageName),
			// Errors only, and never request or response bodies: events are the user's data.
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			DataTraceEnabled:     jsii.Bool(false),
			ThrottlingRateLimit:  jsii.Number(r.throttleRate),
			ThrottlingBurstLimit: jsii.Number(r.throttleBurst),
			TracingEnabled:       jsii.Bool(props.Tracing),
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
		Actions:   jsii.Strings("kinesis:PutRecord", "kinesis:PutRecords"),
		Resources: jsii.Strings(*props.Stream.StreamArn()),
	}))
	if key := props.Stream.EncryptionKey(); key != nil {
		// Writing to a stream encrypted with a customer key needs a data key from it.
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("kms:GenerateDataKey"),
			Resources: jsii.Strings(*key.KeyArn()),
		}))
	}

	validator := api.AddRequestValidator(jsii.String("BodyValidator"), &awsapigateway.RequestValidatorOptions{
		ValidateRequestBody:       jsii.Bool(true),
		ValidateRequestParameters: jsii.Bool(true),
	})
	e := endpoints{api: api, role: role, validator: validator, auth: r.auth, stream: *props.Stream.StreamName()}
	events := api.Root().AddResource(jsii.String("v1"), nil)
	e.add(events, "PutRecord", withStream(putRecordTemplate, e.stream), putRecordSuccessTemplate, &awsapigateway.JsonSchema{
		Schema: awsapigateway.JsonSchemaVersion_DRAFT4, Title: jsii.String("Event"),
		Description: jsii.String("One event: a JSON object"),
		Type:        awsapigateway.JsonSchemaType_OBJECT,
	})
	batch := events.AddResource(jsii.String("batch"), nil)
	e.add(batch, "PutRecords", withStream(putRecordsTemplate, e.stream), putRecordsSuccessTemplate, &awsapigateway.JsonSchema{
		Schema: awsapigateway.JsonSchemaVersion_DRAFT4, Title: jsii.String("Batch"),
		Description: jsii.String("1 to 500 events, each a JSON object"),
		Type:        awsapigateway.JsonSchemaType_ARRAY,
		MinItems:    jsii.Number(1), MaxItems: jsii.Number(MaxBatch),
		Items: &awsapigateway.JsonSchema{Type: awsapigateway.JsonSchemaType_OBJECT},
	})
	addGatewayResponses(api)

	var key awsapigateway.IApiKey
	switch r.auth {
	case AuthAPIKey:
		plan := api.AddUsagePlan(jsii.String("UsagePlan"), &awsapigateway.UsagePlanProps{
			Description: jsii.String("Producers of this stage"),
			Throttle:    &awsapigateway.ThrottleSettings{RateLimit: jsii.Number(r.throttleRate), BurstLimit: jsii.Number(r.throttleBurst)},
			ApiStages:   &[]*awsapigateway.UsagePlanPerApiStage{{Api: api, Stage: api.DeploymentStage()}},
		})
		key = api.AddApiKey(jsii.String("ProducerKey"), &awsapigateway.ApiKeyOptions{
			Description: jsii.String("Key for producers; read its value with aws apigateway get-api-key --include-value"),
		})
		plan.AddApiKey(key, nil)
	case AuthNone:
		awscdk.Annotations_Of(api).AddWarningV2(jsii.String("tributary:apiAuthNone"),
			jsii.String("apiAuth=NONE: anyone who knows the URL can write events to this pipeline."))
	}
	e.suppressAuthFindings()

	var invoke []*string
	for _, res := range []awsapigateway.Resource{events, batch} {
		invoke = append(invoke, api.ArnForExecuteApi(jsii.String("POST"), res.Path(), api.DeploymentStage().StageName()))
	}
	return &IngestAPI{Construct: c, Api: api, Role: role, Events: events, Batch: batch, InvokeArns: invoke, Auth: r.auth, APIKey: key,
		AccessLogs: accessLogs, ExecutionLogs: executionLogs}
}

// endpoints adds POST methods that write to Kinesis.
type endpoints struct {
	api       awsapigateway.RestApi
	role      awsiam.IRole
	validator awsapigateway.IRequestValidator
	auth      string
	stream    string
	methods   []awsapigateway.Method
}

// add creates POST on resource: validated against schema, then the Kinesis
// action with the request template, answering 200 only for a 2xx from Kinesis.
func (e *endpoints) add(resource awsapigateway.Resource, action, request, success string, schema *awsapigateway.JsonSchema) {
	json := func(s string) *map[string]*string { return &map[string]*string{"application/json": jsii.String(s)} }
	model := e.api.AddModel(schema.Title, &awsapigateway.ModelOptions{
		ContentType: jsii.String("application/json"), Description: schema.Description, Schema: schema,
	})
	integration := awsapigateway.NewAwsIntegration(&awsapigateway.AwsIntegrationProps{
		Service:               jsii.String("kinesis"),
		Action:                jsii.String(action),
		IntegrationHttpMethod: jsii.String("POST"),
		Options: &awsapigateway.IntegrationOptions{
			CredentialsRole: e.role,
			// NEVER answers 415 for a Content-Type without a template instead of
			// passing a raw body to Kinesis.
			PassthroughBehavior: awsapigateway.PassthroughBehavior_NEVER,
			RequestParameters: &map[string]*string{
				"integration.request.header.Content-Type": jsii.String("'application/x-amz-json-1.1'"),
			},
			RequestTemplates: json(request),
			// Without explicit patterns every Kinesis error would reach the client as 200.
			IntegrationResponses: &[]*awsapigateway.IntegrationResponse{
				{StatusCode: jsii.String("200"), SelectionPattern: jsii.String(`2\d{2}`), ResponseTemplates: json(success)},
				{StatusCode: jsii.String("400"), SelectionPattern: jsii.String(`4\d{2}`), ResponseTemplates: json(kinesisClientErrorTemplate)},
				{StatusCode: jsii.String("500"), ResponseTemplates: json(backendErrorTemplate)},
			},
		},
	})
	authType := awsapigateway.AuthorizationType_IAM
	if e.auth != AuthIAM {
		authType = awsapigateway.AuthorizationType_NONE
	}
	m := resource.AddMethod(jsii.String("POST"), integration, &awsapigateway.MethodOptions{
		AuthorizationType: authType,
		ApiKeyRequired:    jsii.Bool(e.auth == AuthAPIKey),
		RequestValidator:  e.validator,
		RequestModels:     &map[string]awsapigateway.IModel{"application/json": model},
		RequestParameters: &map[string]*bool{"method.request.header." + PartitionKeyHeader: jsii.Bool(false)},
		MethodResponses: &[]*awsapigateway.MethodResponse{
			{StatusCode: jsii.String("200")}, {StatusCode: jsii.String("400")},
			{StatusCode: jsii.String("429")}, {StatusCode: jsii.String("500")},
		},
	})
	e.methods = append(e.methods, m)
}

// suppressAuthFindings records why each method's authorization is what it is.
func (e *endpoints) suppressAuthFindings() {
	for _, m := range e.methods {
		nag.Suppress(m, "AwsSolutions-COG4",
			"Producers are machines, not users who sign in: they authenticate with SigV4 (IAM), an API key or nothing, as apiAuth chooses; a Cognito user pool has no one to hold its tokens.")
		switch e.auth {
		case AuthAPIKey:
			nag.Suppress(m, "AwsSolutions-APIG4",
				"apiAuth=API_KEY was chosen explicitly: producers send a key of the usage plan, which identifies and meters them; the default, IAM, authorizes with SigV4.")
		case AuthNone:
			nag.Suppress(m, "AwsSolutions-APIG4",
				"apiAuth=NONE was chosen explicitly, and synth warns that anyone who knows the URL can write events; the default, IAM, authorizes with SigV4.")
		}
	}
}

// addGatewayResponses makes API Gateway's own errors JSON with a message that
// says what to do, like the integration's.
func addGatewayResponses(api awsapigateway.RestApi) {
	// A slice, not a map: the order of adding them feeds the deployment's
	// logical id, which must not change between two synths of the same code.
	for _, r := range []struct {
		id     string
		typ    awsapigateway.ResponseType
		status string
		body   string
	}{
		// validationErrorString names what the JSON Schema rejected.
		{"BadRequestBody", awsapigateway.ResponseType_BAD_REQUEST_BODY(), "400",
			`{"message": "Invalid request body: /v1 takes one JSON object, /v1/batch an array of 1 to 500 JSON objects", "validationErrors": "$context.error.validationErrorString"}`},
		{"UnsupportedMediaType", awsapigateway.ResponseType_UNSUPPORTED_MEDIA_TYPE(), "415",
			`{"message": "Content-Type must be application/json"}`},
		{"RequestTooLarge", awsapigateway.ResponseType_REQUEST_TOO_LARGE(), "413",
			`{"message": "Request too large: API Gateway takes at most 10 MB, Kinesis at most 1 MiB per event"}`},
		{"Throttled", awsapigateway.ResponseType_THROTTLED(), "429",
			`{"message": "Too many requests; retry with backoff"}`},
		{"Default4xx", awsapigateway.ResponseType_DEFAULT_4XX(), "",
			`{"message": $context.error.messageString}`},
		{"Default5xx", awsapigateway.ResponseType_DEFAULT_5XX(), "",
			`{"message": $context.error.messageString}`},
	} {
		o := &awsapigateway.GatewayResponseOptions{
			Type:      r.typ,
			Templates: &map[string]*string{"application/json": jsii.String(r.body)},
		}
		if r.status != "" {
			o.StatusCode = jsii.String(r.status)
		}
		api.AddGatewayResponse(jsii.String(r.id), o)
	}
}
