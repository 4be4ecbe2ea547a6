// Package ingestapi is the API Gateway REST API that stores posted JSON events
// in the Kinesis stream through an AWS-service integration (no Lambda).
package ingestapi

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/internal/logretention"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/internal/ingest"
)

// DefaultStageName is the API Gateway stage, and the last part of the URL's path prefix.
const DefaultStageName = "PROD"

// Stage names also end up in stack names, which allow only letters, digits and hyphens.
var stageNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

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

// Stage throttling. The defaults fit one shard (the composition derives them
// from the stream's write capacity). API Gateway's account limits are 10,000
// requests/s with a burst of 5,000.
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
	// Auth is how producers authenticate. Default: ingest.AuthIAM.
	Auth ingest.Auth
	// Tracing turns on AWS X-Ray tracing for the stage. Default: off.
	Tracing bool
	// EndpointType is REGIONAL (producers in the Region) or EDGE (through
	// CloudFront, for producers far away). Default: REGIONAL.
	EndpointType string
	// RecordPacking is how /v1/batch stores a batch: ingest.Packed (one
	// record holding one line per event) or ingest.PerEvent (a record per
	// event, answered per record). Default: ingest.Packed.
	RecordPacking ingest.Packing
	// MaxBatch is the most events one /v1/batch request may carry: at most
	// ingest.MaxBatch, which every packing takes, or with ingest.Packed up to
	// ingest.MaxPackedBatch when nothing downstream splits the record (the
	// pipeline sets it so for JSON by arrival time). Default: ingest.MaxBatch.
	MaxBatch int
	// Schema, when set, is what each event must match (the request model
	// of both methods, with the producer's event_id and event_time): a
	// mismatch answers 400 with the reason. Default: any JSON object.
	Schema *eventschema.Schema
}

type resolved struct {
	stageName, cloudWatchRole, endpointType string
	auth                                    ingest.Auth
	packing                                 ingest.Packing
	maxBatch                                int
	logRetention                            awslogs.RetentionDays
	throttleRate, throttleBurst             int
}

// Validate reports the first setting that is not allowed.
func (p Props) Validate() error {
	_, err := p.resolve()
	return err
}

// Packing is the record packing in force: RecordPacking or ingest.Packed.
func (p Props) Packing() ingest.Packing {
	if p.RecordPacking != "" {
		return p.RecordPacking
	}
	return ingest.Packed
}

// Stage is the stage name in force: StageName or the default.
func (p Props) Stage() string {
	if p.StageName != "" {
		return p.StageName
	}
	return DefaultStageName
}

func (p Props) resolve() (r resolved, err error) {
	r.stageName = p.Stage()
	if !stageNamePattern.MatchString(r.stageName) {
		return r, check.Invalid("stageName", r.stageName, "1 to 64 letters, digits and hyphens, starting with a letter or digit")
	}
	r.auth = ingest.AuthIAM
	if p.Auth != "" {
		r.auth = p.Auth
	}
	auths := make([]string, len(ingest.Auths))
	for i, a := range ingest.Auths {
		auths[i] = string(a)
	}
	if err = check.OneOf("apiAuth", string(r.auth), auths...); err != nil {
		return
	}
	r.packing = p.Packing()
	packings := make([]string, len(ingest.Packings))
	for i, k := range ingest.Packings {
		packings[i] = string(k)
	}
	if err = check.OneOf("recordPacking", string(r.packing), packings...); err != nil {
		return
	}
	r.maxBatch = ingest.MaxBatch
	if p.MaxBatch != 0 {
		r.maxBatch = p.MaxBatch
	}
	if r.packing == ingest.Packed {
		err = check.IntRange("maxBatch", r.maxBatch, 1, ingest.MaxPackedBatch)
	} else {
		err = check.IntRange("maxBatch", r.maxBatch, 1, ingest.MaxBatch)
	}
	if err != nil {
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
	retention, err := logretention.OrDefault(p.LogRetentionDays)
	r.logRetention = retention.Logs
	return
}

// IngestAPI wraps the REST API and what it writes with.
type IngestAPI struct {
	constructs.Construct
	API awsapigateway.RestApi
	// Role is what API Gateway assumes to call Kinesis: PutRecord on this stream only.
	Role awsiam.Role
	// Events is the /v1 resource (one event), Batch /v1/batch (up to MaxBatch()).
	Events, Batch awsapigateway.Resource
	// APIKey is the usage plan's key with ingest.AuthAPIKey, else nil.
	APIKey awsapigateway.IApiKey
	// AccessLogs receives one JSON line per request.
	AccessLogs awslogs.LogGroup
	// ExecutionLogs is the group API Gateway writes execution errors to,
	// created here so that it has a retention.
	ExecutionLogs awslogs.LogGroup

	auth     ingest.Auth
	maxBatch int
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
	a := &IngestAPI{Construct: c, auth: r.auth, maxBatch: r.maxBatch}
	a.newRestAPI(r, props.Tracing)
	a.Role = newKinesisWriteRole(c, props.Stream)

	validator := a.API.AddRequestValidator(jsii.String("BodyValidator"), &awsapigateway.RequestValidatorOptions{
		ValidateRequestBody:       jsii.Bool(true),
		ValidateRequestParameters: jsii.Bool(true),
	})
	e := endpoints{api: a.API, role: a.Role, validator: validator, auth: r.auth, stream: *props.Stream.StreamName()}
	a.Events = a.API.Root().AddResource(jsii.String("v1"), nil)
	event, batch := anyObject(), anyObjects(r.maxBatch)
	if props.Schema != nil {
		event, batch = schemaModels(props.Schema, r.maxBatch)
	}
	e.add(a.Events, integration{"PutRecord", putRecordTemplate, putRecordSuccessTemplate, eventTooLarge}, event)
	a.Batch = a.Events.AddResource(jsii.String("batch"), nil)
	packing := integration{"PutRecord", packedTemplate, packedSuccessTemplate, packedTooLarge}
	if r.packing == ingest.PerEvent {
		packing = integration{"PutRecords", perEventTemplate, perEventSuccessTemplate, perEventTooLong}
	}
	e.add(a.Batch, packing, batch)
	addGatewayResponses(a.API, r.maxBatch)
	a.applyAuth(r)
	e.suppressAuthFindings()
	return a
}

// anyObject is /v1's model without an event schema: any JSON object.
func anyObject() *awsapigateway.JsonSchema {
	return &awsapigateway.JsonSchema{
		Schema: awsapigateway.JsonSchemaVersion_DRAFT4, Title: jsii.String("Event"),
		Description: jsii.String("One event: a JSON object"),
		Type:        awsapigateway.JsonSchemaType_OBJECT,
	}
}

// anyObjects is /v1/batch's model without an event schema.
func anyObjects(maxBatch int) *awsapigateway.JsonSchema {
	return &awsapigateway.JsonSchema{
		Schema: awsapigateway.JsonSchemaVersion_DRAFT4, Title: jsii.String("Batch"),
		Description: jsii.String(fmt.Sprintf("1 to %d events, each a JSON object", maxBatch)),
		Type:        awsapigateway.JsonSchemaType_ARRAY,
		MinItems:    jsii.Number(1), MaxItems: jsii.Number(maxBatch),
		Items: &awsapigateway.JsonSchema{Type: awsapigateway.JsonSchemaType_OBJECT},
	}
}

// schemaModels are both models with an event schema: one event, and 1 to
// maxBatch of them.
func schemaModels(s *eventschema.Schema, maxBatch int) (event, batch *awsapigateway.JsonSchema) {
	event = eventModel(s.Root)
	event.Schema, event.Title = awsapigateway.JsonSchemaVersion_DRAFT4, jsii.String("Event")
	if event.Description == nil {
		event.Description = jsii.String("One event, as the event schema describes it")
	}
	batch = &awsapigateway.JsonSchema{
		Schema: awsapigateway.JsonSchemaVersion_DRAFT4, Title: jsii.String("Batch"),
		Description: jsii.String(fmt.Sprintf("1 to %d events, each as the event schema describes it", maxBatch)),
		Type:        awsapigateway.JsonSchemaType_ARRAY,
		MinItems:    jsii.Number(1), MaxItems: jsii.Number(maxBatch),
		Items: eventModel(s.Root),
	}
	return event, batch
}

// newRestAPI creates the API, its stage (throttled, logged, optionally
// traced) and the log groups it writes to.
func (a *IngestAPI) newRestAPI(r resolved, tracing bool) {
	c := a.Construct
	a.AccessLogs = awslogs.NewLogGroup(c, jsii.String("AccessLogs"), &awslogs.LogGroupProps{Retention: r.logRetention})
	a.API = awsapigateway.NewRestApi(c, jsii.String("Api"), &awsapigateway.RestApiProps{
		RestApiName: jsii.String(*awscdk.Stack_Of(c).StackName() + "-ingest"),
		Description: jsii.String("Tributary ingest API: stores posted JSON events in Kinesis"),
		EndpointConfiguration: &awsapigateway.EndpointConfiguration{
			Types: &[]awsapigateway.EndpointType{awsapigateway.EndpointType(r.endpointType)},
		},
		CloudWatchRole: jsii.Bool(r.cloudWatchRole == CreateCloudWatchRole),
		// 0: API Gateway decompresses every request sent with Content-Encoding
		// gzip or deflate before the mapping templates run (and compresses
		// answers for clients that accept it).
		MinCompressionSize: awscdk.Size_Bytes(jsii.Number(0)),
		DeployOptions: &awsapigateway.StageOptions{
			StageName: jsii.String(r.stageName),
			// Errors only, and never request or response bodies: events are the user's data.
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			DataTraceEnabled:     jsii.Bool(false),
			ThrottlingRateLimit:  jsii.Number(r.throttleRate),
			ThrottlingBurstLimit: jsii.Number(r.throttleBurst),
			TracingEnabled:       jsii.Bool(tracing),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(a.AccessLogs),
			AccessLogFormat: awsapigateway.AccessLogFormat_JsonWithStandardFields(&awsapigateway.JsonWithStandardFieldProps{
				Caller: jsii.Bool(true), HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true),
				RequestTime: jsii.Bool(true), ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true),
				Status: jsii.Bool(true), User: jsii.Bool(true),
			}),
		},
	})
	// The deployment's logical id hashes the methods but not the API's own
	// settings: without this a stage deployed before would not get compression.
	a.API.LatestDeployment().AddToLogicalId(map[string]any{"minimumCompressionSize": 0})
	// The composition publishes the /v1 URL itself; the root URL output would only mislead.
	a.API.Node().TryRemoveChild(jsii.String("Endpoint"))

	// API Gateway would create this group on first use, without a retention.
	a.ExecutionLogs = awslogs.NewLogGroup(c, jsii.String("ExecutionLogs"), &awslogs.LogGroupProps{
		LogGroupName: jsii.String("API-Gateway-Execution-Logs_" + *a.API.RestApiId() + "/" + r.stageName),
		Retention:    r.logRetention,
	})
	a.API.DeploymentStage().Node().AddDependency(a.ExecutionLogs)
	if role := a.API.Node().TryFindChild(jsii.String("CloudWatchRole")); role != nil {
		nag.Suppress(role, "AwsSolutions-IAM4",
			"The account-wide API Gateway logging role uses the AWS managed policy made for it, which lets API Gateway create and write its own log groups.",
			"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
	}
	// With no authorization a web ACL (rate or IP rules) has work to do:
	// nag's APIG3 warning then stands.
	if reason, ok := wafReasons[r.auth]; ok {
		nag.Suppress(a.API.DeploymentStage(), "AwsSolutions-APIG3", reason)
	}
}

// wafReasons say why the stage needs no WAF web ACL, per authorization mode.
var wafReasons = map[ingest.Auth]string{
	ingest.AuthIAM:    "Every method requires SigV4 (IAM) signatures from principals of this account, which API Gateway checks before any integration runs, and stage throttling bounds the request rate; a WAF web ACL would add cost without a rule that applies.",
	ingest.AuthAPIKey: "Every method requires a key of this stage's usage plan, which API Gateway checks before any integration runs, and the usage plan and the stage throttle the request rate; a WAF web ACL would add cost, and restricting producers by IP is a choice the pipeline cannot make for its users.",
}

// newKinesisWriteRole is the role API Gateway assumes: put records to this
// stream, nothing else.
func newKinesisWriteRole(c constructs.Construct, stream awskinesis.IStream) awsiam.Role {
	role := awsiam.NewRole(c, jsii.String("KinesisWriteRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("apigateway.amazonaws.com"), nil),
		Description: jsii.String("Lets the ingest API put records to its own stream, nothing else"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kinesis:PutRecord", "kinesis:PutRecords"),
		Resources: jsii.Strings(*stream.StreamArn()),
	}))
	if key := stream.EncryptionKey(); key != nil {
		// Writing to a stream encrypted with a customer key needs a data key from it.
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("kms:GenerateDataKey"),
			Resources: jsii.Strings(*key.KeyArn()),
		}))
	}
	return role
}

// applyAuth adds what the authorization mode needs beyond the methods'
// settings: a usage plan and its key with API keys, a warning with none.
func (a *IngestAPI) applyAuth(r resolved) {
	switch r.auth {
	case ingest.AuthAPIKey:
		plan := a.API.AddUsagePlan(jsii.String("UsagePlan"), &awsapigateway.UsagePlanProps{
			Description: jsii.String("Producers of this stage"),
			Throttle:    &awsapigateway.ThrottleSettings{RateLimit: jsii.Number(r.throttleRate), BurstLimit: jsii.Number(r.throttleBurst)},
			ApiStages:   &[]*awsapigateway.UsagePlanPerApiStage{{Api: a.API, Stage: a.API.DeploymentStage()}},
		})
		a.APIKey = a.API.AddApiKey(jsii.String("ProducerKey"), &awsapigateway.ApiKeyOptions{
			Description: jsii.String("Key for producers; read its value with aws apigateway get-api-key --include-value"),
		})
		plan.AddApiKey(a.APIKey, nil)
	case ingest.AuthNone:
		awscdk.Annotations_Of(a.API).AddWarningV2(jsii.String("tributary:apiAuthNone"),
			jsii.String("apiAuth=NONE: anyone who knows the URL can write events to this pipeline."))
	}
}

// URL is the /v1 URL (one event); the batch URL is URL + "/batch".
func (a *IngestAPI) URL() *string { return a.API.UrlForPath(jsii.String(ingest.EventPath)) }

// BatchURL is the /v1/batch URL.
func (a *IngestAPI) BatchURL() *string { return a.API.UrlForPath(jsii.String(ingest.BatchPath)) }

// Auth is the authorization mode in force.
func (a *IngestAPI) Auth() ingest.Auth { return a.auth }

// MaxBatch is the most events a /v1/batch request may carry.
func (a *IngestAPI) MaxBatch() int { return a.maxBatch }

// GrantInvoke lets grantee call POST /v1 and POST /v1/batch on the stage
// (execute-api:Invoke on those two methods only), as IAM authorization needs.
func (a *IngestAPI) GrantInvoke(grantee awsiam.IGrantable) awsiam.Grant {
	var arns []*string
	for _, res := range []awsapigateway.Resource{a.Events, a.Batch} {
		arns = append(arns, a.API.ArnForExecuteApi(jsii.String("POST"), res.Path(), a.API.DeploymentStage().StageName()))
	}
	return awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee: grantee, Actions: jsii.Strings("execute-api:Invoke"), ResourceArns: &arns,
	})
}

// GrantReadAPIKey lets grantee read the value of the usage plan's key
// (apigateway:GET on that key only). It returns nil unless the mode is
// ingest.AuthAPIKey: there is no key to read.
func (a *IngestAPI) GrantReadAPIKey(grantee awsiam.IGrantable) awsiam.Grant {
	if a.APIKey == nil {
		return nil
	}
	arn := fmt.Sprintf("arn:%s:apigateway:%s::/apikeys/%s", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *a.APIKey.KeyId())
	return awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee: grantee, Actions: jsii.Strings("apigateway:GET"), ResourceArns: jsii.Strings(arn),
	})
}

// APIKeyID is the usage plan's key id with ingest.AuthAPIKey, else nil.
func (a *IngestAPI) APIKeyID() *string {
	if a.APIKey == nil {
		return nil
	}
	return a.APIKey.KeyId()
}

// endpoints adds POST methods that write to Kinesis.
type endpoints struct {
	api       awsapigateway.RestApi
	role      awsiam.IRole
	validator awsapigateway.IRequestValidator
	auth      ingest.Auth
	stream    string
	methods   []awsapigateway.Method
}

// integration is a method's Kinesis action and its mapping templates.
type integration struct {
	action, request, success string
	tooLarge                 string // what to do about a record over Kinesis's limit
}

// add creates POST on resource: validated against schema, then the Kinesis
// action with the request template, answering 200 only for a 2xx from Kinesis.
func (e *endpoints) add(resource awsapigateway.Resource, in integration, schema *awsapigateway.JsonSchema) {
	json := func(s string) *map[string]*string { return &map[string]*string{"application/json": jsii.String(s)} }
	model := e.api.AddModel(schema.Title, &awsapigateway.ModelOptions{
		ContentType: jsii.String("application/json"), Description: schema.Description, Schema: schema,
	})
	integration := awsapigateway.NewAwsIntegration(&awsapigateway.AwsIntegrationProps{
		Service:               jsii.String("kinesis"),
		Action:                jsii.String(in.action),
		IntegrationHttpMethod: jsii.String("POST"),
		Options: &awsapigateway.IntegrationOptions{
			CredentialsRole: e.role,
			// NEVER answers 415 for a Content-Type without a template instead of
			// passing a raw body to Kinesis.
			PassthroughBehavior: awsapigateway.PassthroughBehavior_NEVER,
			RequestParameters: &map[string]*string{
				"integration.request.header.Content-Type": jsii.String("'application/x-amz-json-1.1'"),
			},
			RequestTemplates: json(withStream(in.request, e.stream)),
			// Without explicit patterns every Kinesis error would reach the client as 200.
			IntegrationResponses: &[]*awsapigateway.IntegrationResponse{
				{StatusCode: jsii.String("200"), SelectionPattern: jsii.String(`2\d{2}`), ResponseTemplates: json(in.success)},
				{StatusCode: jsii.String("400"), SelectionPattern: jsii.String(`4\d{2}`), ResponseTemplates: json(kinesisClientErrorTemplate(in.tooLarge))},
				{StatusCode: jsii.String("500"), ResponseTemplates: json(backendErrorTemplate)},
			},
		},
	})
	authType := awsapigateway.AuthorizationType_IAM
	if e.auth != ingest.AuthIAM {
		authType = awsapigateway.AuthorizationType_NONE
	}
	m := resource.AddMethod(jsii.String("POST"), integration, &awsapigateway.MethodOptions{
		AuthorizationType: authType,
		ApiKeyRequired:    jsii.Bool(e.auth == ingest.AuthAPIKey),
		RequestValidator:  e.validator,
		RequestModels:     &map[string]awsapigateway.IModel{"application/json": model},
		RequestParameters: &map[string]*bool{"method.request.header." + ingest.PartitionKeyHeader: jsii.Bool(false)},
		MethodResponses: &[]*awsapigateway.MethodResponse{
			{StatusCode: jsii.String("200")}, {StatusCode: jsii.String("400")}, {StatusCode: jsii.String("413")},
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
		case ingest.AuthAPIKey:
			nag.Suppress(m, "AwsSolutions-APIG4",
				"apiAuth=API_KEY was chosen explicitly: producers send a key of the usage plan, which identifies and meters them; the default, IAM, authorizes with SigV4.")
		case ingest.AuthNone:
			nag.Suppress(m, "AwsSolutions-APIG4",
				"apiAuth=NONE was chosen explicitly, and synth warns that anyone who knows the URL can write events; the default, IAM, authorizes with SigV4.")
		}
	}
}

// addGatewayResponses makes API Gateway's own errors JSON with a message that
// says what to do, like the integration's.
func addGatewayResponses(api awsapigateway.RestApi, maxBatch int) {
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
			fmt.Sprintf(`{"message": "Invalid request body: /v1 takes one JSON object, /v1/batch an array of 1 to %d JSON objects", "validationErrors": "$context.error.validationErrorString"}`, maxBatch)},
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
