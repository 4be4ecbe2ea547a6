package ingestapi_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/ingestapi"
	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/internal/ingest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func ref[T any](v T) *T { return &v }

// synthesized is one configuration: the API on a stack of its own, next to
// the stream it writes to and a role (Producer) that was granted what the
// API grants.
type synthesized struct {
	api   *ingestapi.IngestAPI
	stack awscdk.Stack
	tpl   assertions.Template
	json  map[string]any
	// annotations are the messages of the same synth.
	annotations assertions.Annotations
	streamID    string // logical id of the stream
	grantee     string // logical id of the Producer role
	invoke      awsiam.Grant
	readKey     awsiam.Grant
}

// The configurations, each synthesized once, on first use.
var (
	cfgIAM    = lazy(nil, nil)
	cfgAPIKey = lazy(&ingestapi.Props{
		Auth: ingest.AuthAPIKey, Tracing: true, EndpointType: "EDGE", CloudWatchRole: ingestapi.ExistingCloudWatchRole,
		ThrottleRate: ref(200), ThrottleBurst: ref(50), StageName: "dev-2", LogRetentionDays: ref(7),
		RecordPacking: ingest.PerEvent,
	}, &awskinesis.StreamProps{Encryption: awskinesis.StreamEncryption_KMS})
	cfgNone = lazy(&ingestapi.Props{Auth: ingest.AuthNone}, nil)
)

// lazy returns a function that synthesizes the API with props (Stream set
// to a new stream with streamProps) the first time it is called.
func lazy(props *ingestapi.Props, streamProps *awskinesis.StreamProps) func() *synthesized {
	var s *synthesized
	return func() *synthesized {
		if s != nil {
			return s
		}
		stack := cdktest.NewStack()
		stream := awskinesis.NewStream(stack, jsii.String("Events"), streamProps)
		p := ingestapi.Props{}
		if props != nil {
			p = *props
		}
		p.Stream = stream
		api := ingestapi.New(stack, "Ingest", &p)
		producer := awsiam.NewRole(stack, jsii.String("Producer"), &awsiam.RoleProps{
			AssumedBy: awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		})
		s = &synthesized{api: api, stack: stack}
		s.invoke = api.GrantInvoke(producer)
		s.readKey = api.GrantReadAPIKey(producer)
		s.annotations = assertions.Annotations_FromStack(stack) // synthesizes
		s.tpl = assertions.Template_FromStack(stack, nil)       // the same assembly
		s.json = cdktest.JSON(s.tpl)
		s.streamID = logicalID(stack, stream.Node().DefaultChild())
		s.grantee = logicalID(stack, producer.Node().DefaultChild())
		return s
	}
}

func logicalID(stack awscdk.Stack, c any) string {
	return fmt.Sprint(stack.Resolve(stack.GetLogicalId(c.(awscdk.CfnElement))))
}

// resource is the template's resource with logical id id.
func (s *synthesized) resource(t *testing.T, id string) map[string]any {
	t.Helper()
	r, ok := s.json["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	return r
}

// one returns the id and properties of the single resource of type typ
// whose properties match props (Match_ObjectLike), failing unless there is
// exactly one.
func (s *synthesized) one(t *testing.T, typ string, props map[string]any) (string, map[string]any) {
	t.Helper()
	return cdktest.One(t, s.tpl, typ, props)
}

// post returns the id and properties of the POST method of /v1 ("v1") or
// /v1/batch ("batch"), found through the resource tree from the API's root.
func (s *synthesized) post(t *testing.T, pathPart string) (string, map[string]any) {
	t.Helper()
	apiID, _ := s.one(t, "AWS::ApiGateway::RestApi", nil)
	v1, _ := s.one(t, "AWS::ApiGateway::Resource", map[string]any{
		"PathPart": "v1", "ParentId": map[string]any{"Fn::GetAtt": []any{apiID, "RootResourceId"}},
	})
	res := v1
	if pathPart == "batch" {
		res, _ = s.one(t, "AWS::ApiGateway::Resource", map[string]any{"PathPart": "batch", "ParentId": map[string]any{"Ref": v1}})
	}
	return s.one(t, "AWS::ApiGateway::Method", map[string]any{"HttpMethod": "POST", "ResourceId": map[string]any{"Ref": res}})
}

// methods are both POST methods by path.
func (s *synthesized) methods(t *testing.T) map[string]map[string]any {
	t.Helper()
	_, v1 := s.post(t, "v1")
	_, batch := s.post(t, "batch")
	return map[string]map[string]any{"/v1": v1, "/v1/batch": batch}
}

// get walks a decoded template by keys and indexes; nil when a step is missing.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func jsonOf(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// The default API is REGIONAL, named after its stack, with one stage PROD
// that writes JSON access logs to a log group of its own (generated name,
// 30 days), and no CloudFormation output: the composition publishes the
// URLs it wants.
func TestDefaults(t *testing.T) {
	s := cfgIAM()
	apiID, api := s.one(t, "AWS::ApiGateway::RestApi", nil)
	if got := jsonOf(api["EndpointConfiguration"]); got != `{"Types":["REGIONAL"]}` {
		t.Errorf("EndpointConfiguration = %s, want only REGIONAL", got)
	}
	if api["Name"] != "Test-ingest" {
		t.Errorf("API Name = %v, want Test-ingest (<stack name>-ingest)", api["Name"])
	}
	cdktest.Expect(t, "one stage PROD of this API, not traced", func() {
		s.tpl.ResourceCountIs(jsii.String("AWS::ApiGateway::Stage"), jsii.Number(1))
		s.tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Stage"), map[string]any{
			"StageName": "PROD", "RestApiId": map[string]any{"Ref": apiID}, "TracingEnabled": false,
		})
	})
	if got := (ingestapi.Props{}).Stage(); got != "PROD" {
		t.Errorf("Props{}.Stage() = %q, want PROD", got)
	}
	if got := (ingestapi.Props{StageName: "dev"}).Stage(); got != "dev" {
		t.Errorf("Stage() = %q, want dev", got)
	}

	_, stage := s.one(t, "AWS::ApiGateway::Stage", nil)
	logsID := strings.TrimSuffix(strings.TrimPrefix(cdktest.Joined(get(stage, "AccessLogSetting", "DestinationArn")),
		"arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${"), "}")
	logs := s.resource(t, logsID)
	if logs["Type"] != "AWS::Logs::LogGroup" {
		t.Fatalf("access logs go to %v, not a log group of this stack", get(stage, "AccessLogSetting", "DestinationArn"))
	}
	if got := get(logs, "Properties", "RetentionInDays"); got != 30.0 {
		t.Errorf("access logs RetentionInDays = %v, want 30", got)
	}
	if name := get(logs, "Properties", "LogGroupName"); name != nil {
		t.Errorf("access log group has a fixed name %v", name)
	}
	format, _ := get(stage, "AccessLogSetting", "Format").(string)
	var fields map[string]string
	if err := json.Unmarshal([]byte(format), &fields); err != nil {
		t.Fatalf("access log format is not one JSON object: %v: %s", err, format)
	}
	for k, v := range map[string]string{
		"requestId": "$context.requestId", "status": "$context.status", "caller": "$context.identity.caller",
		"ip": "$context.identity.sourceIp", "user": "$context.identity.user", "resourcePath": "$context.resourcePath",
		"httpMethod": "$context.httpMethod", "requestTime": "$context.requestTime", "protocol": "$context.protocol",
		"responseLength": "$context.responseLength",
	} {
		if fields[k] != v {
			t.Errorf("access log field %s = %q, want %q", k, fields[k], v)
		}
	}
	if outputs := *s.tpl.FindOutputs(jsii.String("*"), nil); len(outputs) != 0 {
		t.Errorf("outputs %v; want none (RestApi's root Endpoint output is removed)", keys(s.json["Outputs"]))
	}
	if a := s.api.Auth(); a != ingest.AuthIAM {
		t.Errorf("Auth() = %q, want IAM", a)
	}
}

// Execution logging is on for errors only and never logs bodies (events are
// the user's data), into a log group created with a retention under the name
// API Gateway writes to; the stage waits for it and for the account setting.
func TestExecutionLogging(t *testing.T) {
	s := cfgIAM()
	apiID, _ := s.one(t, "AWS::ApiGateway::RestApi", nil)
	_, stage := s.one(t, "AWS::ApiGateway::Stage", nil)
	if got := jsonOf(stage["MethodSettings"]); got != `[{"DataTraceEnabled":false,"HttpMethod":"*","LoggingLevel":"ERROR","ResourcePath":"/*","ThrottlingBurstLimit":1000,"ThrottlingRateLimit":1000}]` {
		t.Errorf("MethodSettings = %s, want */* at ERROR without data trace, throttled 1000/1000", got)
	}
	logsID, logs := s.one(t, "AWS::Logs::LogGroup", map[string]any{"LogGroupName": assertions.Match_AnyValue()})
	if got := cdktest.Joined(logs["LogGroupName"]); got != "API-Gateway-Execution-Logs_${"+apiID+"}/PROD" {
		t.Errorf("execution log group name = %s, want API-Gateway-Execution-Logs_<api id>/PROD", got)
	}
	if logs["RetentionInDays"] != 30.0 {
		t.Errorf("execution logs RetentionInDays = %v, want 30", logs["RetentionInDays"])
	}
	accountID, _ := s.one(t, "AWS::ApiGateway::Account", nil)
	cdktest.Expect(t, "stage depends on the execution log group and the account setting", func() {
		s.tpl.HasResource(jsii.String("AWS::ApiGateway::Stage"), map[string]any{
			"DependsOn": assertions.Match_ArrayWith(&[]any{accountID, logsID}),
		})
	})

	// Another stage name and retention reach the name and the group.
	k := cfgAPIKey()
	keyAPI, _ := k.one(t, "AWS::ApiGateway::RestApi", nil)
	_, klogs := k.one(t, "AWS::Logs::LogGroup", map[string]any{"LogGroupName": assertions.Match_AnyValue()})
	if got := cdktest.Joined(klogs["LogGroupName"]); got != "API-Gateway-Execution-Logs_${"+keyAPI+"}/dev-2" {
		t.Errorf("execution log group name = %s, want API-Gateway-Execution-Logs_<api id>/dev-2", got)
	}
	cdktest.Expect(t, "both log groups kept 7 days", func() {
		k.tpl.ResourcePropertiesCountIs(jsii.String("AWS::Logs::LogGroup"), map[string]any{"RetentionInDays": 7}, jsii.Number(2))
		k.tpl.ResourceCountIs(jsii.String("AWS::Logs::LogGroup"), jsii.Number(2))
	})
	cdktest.Expect(t, "stage dev-2, traced", func() {
		k.tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Stage"), map[string]any{"StageName": "dev-2", "TracingEnabled": true})
	})
}

// CREATE sets the account's API Gateway logging role to a role made for it,
// kept when the stack is deleted (other APIs of the account may rely on it);
// EXISTING leaves the account setting alone and creates no role.
func TestAccountCloudWatchRole(t *testing.T) {
	s := cfgIAM()
	_, account := s.one(t, "AWS::ApiGateway::Account", nil)
	roleID, _ := get(account, "CloudWatchRoleArn", "Fn::GetAtt", 0).(string)
	if attr := get(account, "CloudWatchRoleArn", "Fn::GetAtt", 1); attr != "Arn" {
		t.Fatalf("account CloudWatchRoleArn = %v, want a role of this stack", account["CloudWatchRoleArn"])
	}
	role := s.resource(t, roleID)
	if role["Type"] != "AWS::IAM::Role" {
		t.Fatalf("account CloudWatchRoleArn names %s, a %v", roleID, role["Type"])
	}
	if role["DeletionPolicy"] != "Retain" || role["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("logging role DeletionPolicy %v UpdateReplacePolicy %v, want Retain", role["DeletionPolicy"], role["UpdateReplacePolicy"])
	}
	if got := cdktest.Joined(get(role, "Properties", "ManagedPolicyArns", 0)); got != "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs" ||
		len(get(role, "Properties", "ManagedPolicyArns").([]any)) != 1 {
		t.Errorf("logging role managed policies = %v, want AmazonAPIGatewayPushToCloudWatchLogs only", get(role, "Properties", "ManagedPolicyArns"))
	}
	if got := jsonOf(get(role, "Properties", "AssumeRolePolicyDocument", "Statement")); got != `[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"}}]` {
		t.Errorf("logging role trust = %s, want API Gateway only", got)
	}
	if got := jsonOf(get(role, "Metadata", "cdk_nag", "rules_to_suppress")); !strings.Contains(got, `"applies_to":["Policy::arn:\u003cAWS::Partition\u003e:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],"id":"AwsSolutions-IAM4"`) {
		t.Errorf("logging role IAM4 suppression = %s, want it for AmazonAPIGatewayPushToCloudWatchLogs only", got)
	}
	k := cfgAPIKey()
	cdktest.Expect(t, "EXISTING: no account setting", func() {
		k.tpl.ResourceCountIs(jsii.String("AWS::ApiGateway::Account"), jsii.Number(0))
	})
	// Roles left with EXISTING: the Kinesis role and the test's Producer role.
	cdktest.Expect(t, "EXISTING: no logging role", func() {
		k.tpl.ResourceCountIs(jsii.String("AWS::IAM::Role"), jsii.Number(2))
	})
	if strings.Contains(jsonOf(k.json), "AmazonAPIGatewayPushToCloudWatchLogs") {
		t.Error("EXISTING still refers to AmazonAPIGatewayPushToCloudWatchLogs")
	}
	cdktest.Expect(t, "EXISTING: the stage waits only for its log group", func() {
		logsID, _ := k.one(t, "AWS::Logs::LogGroup", map[string]any{"LogGroupName": assertions.Match_AnyValue()})
		k.tpl.HasResource(jsii.String("AWS::ApiGateway::Stage"), map[string]any{"DependsOn": []any{logsID}})
	})
}

// The stage throttles at the rates it is given (200/50 here; 1000/1000 by
// default, see TestExecutionLogging), and so does the usage plan with API keys.
func TestThrottlingFromProps(t *testing.T) {
	k := cfgAPIKey()
	_, stage := k.one(t, "AWS::ApiGateway::Stage", nil)
	if r, b := get(stage, "MethodSettings", 0, "ThrottlingRateLimit"), get(stage, "MethodSettings", 0, "ThrottlingBurstLimit"); r != 200.0 || b != 50.0 {
		t.Errorf("stage throttling %v/%v, want 200/50", r, b)
	}
	cdktest.Expect(t, "usage plan throttled like the stage", func() {
		k.tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::UsagePlan"), map[string]any{
			"Throttle": map[string]any{"RateLimit": 200, "BurstLimit": 50},
		})
	})
}

// Tracing and the endpoint type follow the props (REGIONAL and untraced by
// default: TestDefaults).
func TestTracingAndEndpointType(t *testing.T) {
	k := cfgAPIKey()
	_, api := k.one(t, "AWS::ApiGateway::RestApi", nil)
	if got := jsonOf(api["EndpointConfiguration"]); got != `{"Types":["EDGE"]}` {
		t.Errorf("EndpointConfiguration = %s, want only EDGE", got)
	}
	_, stage := k.one(t, "AWS::ApiGateway::Stage", nil)
	if stage["TracingEnabled"] != true {
		t.Errorf("TracingEnabled = %v, want true", stage["TracingEnabled"])
	}
}

// children are the ids of c's children.
func children(c constructs.IConstruct) string {
	var ids []string
	for _, child := range *c.Node().Children() {
		ids = append(ids, *child.Node().Id())
	}
	return fmt.Sprint(ids)
}

// Invalid props fail before anything is created, with one line naming the
// setting, the value and what is allowed; the limits themselves are accepted.
func TestInvalidProps(t *testing.T) {
	stack := cdktest.NewStack()
	stream := awskinesis.NewStream(stack, jsii.String("Events"), nil)
	long := strings.Repeat("a", 65)
	before := children(stack)
	for i, c := range []struct {
		props ingestapi.Props
		want  string
	}{
		{ingestapi.Props{StageName: "prod_1"}, `stageName: invalid value "prod_1"; allowed: 1 to 64 letters, digits and hyphens, starting with a letter or digit`},
		{ingestapi.Props{StageName: "-dev"}, `stageName: invalid value "-dev"; allowed: 1 to 64 letters, digits and hyphens, starting with a letter or digit`},
		{ingestapi.Props{StageName: long}, `stageName: invalid value "` + long + `"; allowed: 1 to 64 letters, digits and hyphens, starting with a letter or digit`},
		{ingestapi.Props{Auth: "COGNITO"}, `apiAuth: invalid value "COGNITO"; allowed: one of ["IAM" "API_KEY" "NONE"]`},
		{ingestapi.Props{Auth: "iam"}, `apiAuth: invalid value "iam"; allowed: one of ["IAM" "API_KEY" "NONE"]`},
		{ingestapi.Props{EndpointType: "PRIVATE"}, `apiEndpointType: invalid value "PRIVATE"; allowed: one of ["REGIONAL" "EDGE"]`},
		{ingestapi.Props{RecordPacking: "BATCHED"}, `recordPacking: invalid value "BATCHED"; allowed: one of ["PACKED" "PER_EVENT"]`},
		{ingestapi.Props{MaxBatch: -1}, `maxBatch: invalid value -1; allowed: an integer from 1 to 1000`},
		{ingestapi.Props{MaxBatch: 1001}, `maxBatch: invalid value 1001; allowed: an integer from 1 to 1000`},
		{ingestapi.Props{MaxBatch: 501, RecordPacking: ingest.PerEvent}, `maxBatch: invalid value 501; allowed: an integer from 1 to 500`},
		{ingestapi.Props{CloudWatchRole: "NONE"}, `apiCloudWatchRole: invalid value "NONE"; allowed: one of ["CREATE" "EXISTING"]`},
		{ingestapi.Props{ThrottleRate: ref(0)}, `apiThrottleRate: invalid value 0; allowed: an integer from 1 to 10000`},
		{ingestapi.Props{ThrottleRate: ref(10001)}, `apiThrottleRate: invalid value 10001; allowed: an integer from 1 to 10000`},
		{ingestapi.Props{ThrottleBurst: ref(0)}, `apiThrottleBurst: invalid value 0; allowed: an integer from 1 to 5000`},
		{ingestapi.Props{ThrottleBurst: ref(5001)}, `apiThrottleBurst: invalid value 5001; allowed: an integer from 1 to 5000`},
		{ingestapi.Props{LogRetentionDays: ref(8)}, `logRetentionDays: invalid value 8; allowed: one of [1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653] (days CloudWatch Logs supports)`},
	} {
		if err := c.props.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v, want %q", c.props, err, c.want)
		}
		p := c.props
		p.Stream = stream
		cdktest.Panics(t, c.want, func() { ingestapi.New(stack, fmt.Sprintf("Invalid%d", i), &p) })
	}
	cdktest.Panics(t, "ingestapi: Stream is required", func() { ingestapi.New(stack, "NoProps", nil) })
	cdktest.Panics(t, "ingestapi: Stream is required", func() { ingestapi.New(stack, "NoStream", &ingestapi.Props{}) })
	// Nothing was added to the stack by the rejected props.
	if got := children(stack); got != before {
		t.Errorf("stack holds %s after rejected props, want %s: nothing added", got, before)
	}

	for _, ok := range []ingestapi.Props{
		{StageName: strings.Repeat("a", 64), ThrottleRate: ref(10000), ThrottleBurst: ref(5000)},
		{StageName: "1", ThrottleRate: ref(1), ThrottleBurst: ref(1), LogRetentionDays: ref(3653)},
		{Auth: ingest.AuthNone, EndpointType: "EDGE", CloudWatchRole: ingestapi.ExistingCloudWatchRole},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
}
