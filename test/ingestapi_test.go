package test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tributary/tributary/config"
)

// postV1 returns the POST /v1 method's properties.
func (s *synthesized) postV1(t *testing.T) map[string]any { return s.post(t, "v1") }

// postBatch returns the POST /v1/batch method's properties.
func (s *synthesized) postBatch(t *testing.T) map[string]any { return s.post(t, "batch") }

func (s *synthesized) post(t *testing.T, pathPart string) map[string]any {
	t.Helper()
	resID := ""
	for id, r := range s.resources("AWS::ApiGateway::Resource") {
		if get(r, "Properties", "PathPart") == pathPart {
			resID = id
		}
	}
	for _, m := range s.resources("AWS::ApiGateway::Method") {
		if get(m, "Properties", "ResourceId", "Ref") == resID && get(m, "Properties", "HttpMethod") == "POST" {
			return props(m)
		}
	}
	t.Fatalf("no POST method on %s", pathPart)
	return nil
}

func TestIngestAPIIsRegionalWithStageAndAccessLogs(t *testing.T) {
	s := synth(t, nil)
	_, api := s.only(t, "AWS::ApiGateway::RestApi")
	if got := get(api, "Properties", "EndpointConfiguration", "Types"); len(strs(got)) != 1 || strs(got)[0] != "REGIONAL" {
		t.Errorf("endpoint types = %v, want [REGIONAL]", got)
	}
	if got := get(api, "Properties", "Name"); got != "Tributary-PROD-Pipeline-ingest" {
		t.Errorf("API name = %v", got)
	}
	_, stage := s.only(t, "AWS::ApiGateway::Stage")
	if got := get(stage, "Properties", "StageName"); got != "PROD" {
		t.Errorf("StageName = %v, want PROD", got)
	}
	dest := joined(get(stage, "Properties", "AccessLogSetting", "DestinationArn"))
	var lg map[string]any
	for id, g := range s.resources("AWS::Logs::LogGroup") {
		if dest == "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${"+id+"}" {
			lg = g
		}
	}
	if lg == nil {
		t.Fatalf("access logs go to %s, not a log group of this stack", dest)
	}
	if get(lg, "Properties", "RetentionInDays") != 30.0 {
		t.Errorf("access log RetentionInDays = %v, want 30", get(lg, "Properties", "RetentionInDays"))
	}
	format, _ := get(stage, "Properties", "AccessLogSetting", "Format").(string)
	for _, field := range []string{`"requestId":"$context.requestId"`, `"status":"$context.status"`, `"caller":"$context.identity.caller"`} {
		if !strings.Contains(format, field) {
			t.Errorf("access log format lacks %s: %s", field, format)
		}
	}
}

func TestIngestMethodRequiresSigV4AndAValidJSONObject(t *testing.T) {
	s := synth(t, nil)
	m := s.postV1(t)
	if m["AuthorizationType"] != "AWS_IAM" {
		t.Errorf("AuthorizationType = %v, want AWS_IAM", m["AuthorizationType"])
	}
	if m["ApiKeyRequired"] == true {
		t.Error("API key required on top of IAM")
	}
	validatorID, _ := get(m, "RequestValidatorId", "Ref").(string)
	v, ok := s.resources("AWS::ApiGateway::RequestValidator")[validatorID]
	if !ok || get(v, "Properties", "ValidateRequestBody") != true || get(v, "Properties", "ValidateRequestParameters") != true {
		t.Errorf("method's request validator %q does not validate body and parameters: %v", validatorID, v)
	}
	modelID, _ := get(m, "RequestModels", "application/json", "Ref").(string)
	model, ok := s.resources("AWS::ApiGateway::Model")[modelID]
	if !ok {
		t.Fatalf("no request model for application/json")
	}
	schema := get(model, "Properties", "Schema")
	if get(schema, "type") != "object" || get(schema, "$schema") != "http://json-schema.org/draft-04/schema#" {
		t.Errorf("event model schema = %v, want a draft-04 object", schema)
	}
	if got := get(m, "RequestParameters", "method.request.header.X-Partition-Key"); got != false {
		t.Errorf("X-Partition-Key must be an optional header, got %v", got)
	}
}

func TestIngestIntegrationCallsKinesisPutRecord(t *testing.T) {
	s := synth(t, nil)
	integ := get(s.postV1(t), "Integration")
	if get(integ, "Type") != "AWS" || get(integ, "IntegrationHttpMethod") != "POST" {
		t.Errorf("integration type/method = %v/%v", get(integ, "Type"), get(integ, "IntegrationHttpMethod"))
	}
	if got := joined(get(integ, "Uri")); got != "arn:${AWS::Partition}:apigateway:${AWS::Region}:kinesis:action/PutRecord" {
		t.Errorf("Uri = %s", got)
	}
	// NEVER: a Content-Type without a template gets 415, never a raw passthrough.
	if get(integ, "PassthroughBehavior") != "NEVER" {
		t.Errorf("PassthroughBehavior = %v, want NEVER", get(integ, "PassthroughBehavior"))
	}
	templates, _ := get(integ, "RequestTemplates").(map[string]any)
	if len(templates) != 1 || templates["application/json"] == nil {
		t.Errorf("request templates = %v; want exactly application/json", templates)
	}
	if got := get(integ, "RequestParameters", "integration.request.header.Content-Type"); got != "'application/x-amz-json-1.1'" {
		t.Errorf("Kinesis Content-Type header = %v", got)
	}
	roleID, _ := get(integ, "Credentials", "Fn::GetAtt", 0).(string)
	if _, ok := s.resources("AWS::IAM::Role")[roleID]; !ok {
		t.Errorf("integration credentials %v are not a role of this stack", get(integ, "Credentials"))
	}
}

// The request template, read as text. Its rendering is what API Gateway runs;
// these checks pin the parts that make one event one newline-terminated line.
func TestIngestRequestTemplate(t *testing.T) {
	s := synth(t, nil)
	streamID, _ := s.only(t, "AWS::Kinesis::Stream")
	tpl := joined(get(s.postV1(t), "Integration", "RequestTemplates", "application/json"))
	for _, want := range []string{
		// re-serialised by API Gateway: pretty-printed input becomes one line
		`#set($event = $input.json('$'))`,
		// the record is that line plus "\n", base64-encoded as Kinesis wants
		"\"Data\": \"$util.base64Encode(\"$event\n\")\"",
		// the client's partition key, else the request id
		`#set($key = $input.params('X-Partition-Key'))`,
		`#if("$!key" == "")#set($key = $context.requestId)#end`,
		`"PartitionKey": "$util.escapeJavaScript($key).replaceAll("\\'", "'")"`,
		`"StreamName": "${` + streamID + `}"`,
	} {
		if !strings.Contains(tpl, want) {
			t.Errorf("request template lacks %q:\n%s", want, tpl)
		}
	}
	if strings.Contains(tpl, "$input.body") {
		t.Error("request template passes the raw body; pretty-printed JSON would span several lines")
	}
}

// A request the API cannot store never answers 200: only a 2xx from Kinesis
// maps to 200, Kinesis 4xx to 400/429/500, and everything else to 500.
func TestIngestIntegrationResponsesAreHonest(t *testing.T) {
	s := synth(t, nil)
	for _, m := range []map[string]any{s.postV1(t), s.postBatch(t)} {
		checkIntegrationResponses(t, m)
	}
}

func checkIntegrationResponses(t *testing.T, m map[string]any) {
	t.Helper()
	responses, _ := get(m, "Integration", "IntegrationResponses").([]any)
	byStatus := map[string]map[string]any{}
	defaults := 0
	for _, r := range responses {
		r := r.(map[string]any)
		code, _ := r["StatusCode"].(string)
		byStatus[code] = r
		pattern, hasPattern := r["SelectionPattern"].(string)
		if !hasPattern || pattern == "" {
			defaults++
			if code == "200" {
				t.Error("the default integration response is 200: any Kinesis error would reach the client as success")
			}
		}
	}
	if len(responses) != 3 || defaults != 1 {
		t.Fatalf("want 3 integration responses with one default, got %d with %d defaults", len(responses), defaults)
	}
	if byStatus["200"]["SelectionPattern"] != `2\d{2}` || byStatus["400"]["SelectionPattern"] != `4\d{2}` || byStatus["500"]["SelectionPattern"] != nil {
		t.Errorf("selection patterns: 200=%v 400=%v 500=%v", byStatus["200"]["SelectionPattern"], byStatus["400"]["SelectionPattern"], byStatus["500"]["SelectionPattern"])
	}
	re := regexp.MustCompile(`^` + byStatus["200"]["SelectionPattern"].(string) + `$`)
	for code, ok := range map[string]bool{"200": true, "400": false, "500": false, "503": false} {
		if re.MatchString(code) != ok {
			t.Errorf("2xx pattern matches Kinesis status %s: %v", code, !ok)
		}
	}
	clientErr := get(byStatus["400"], "ResponseTemplates", "application/json").(string)
	for _, want := range []string{
		`$type.contains("ProvisionedThroughputExceededException")`,
		`#set($context.responseOverride.status = 429)`,
		`#set($context.responseOverride.status = 500)`,
	} {
		if !strings.Contains(clientErr, want) {
			t.Errorf("4xx template lacks %s:\n%s", want, clientErr)
		}
	}
	declared := map[string]bool{}
	for _, r := range get(m, "MethodResponses").([]any) {
		declared[get(r, "StatusCode").(string)] = true
	}
	for _, code := range []string{"200", "400", "429", "500"} {
		if !declared[code] {
			t.Errorf("method response %s not declared", code)
		}
	}
}

// API Gateway may put records to this one stream and do nothing else, for both endpoints.
func TestIngestRoleMayOnlyPutRecordsToItsStream(t *testing.T) {
	s := synth(t, nil)
	streamID, _ := s.only(t, "AWS::Kinesis::Stream")
	roleID, _ := get(s.postV1(t), "Integration", "Credentials", "Fn::GetAtt", 0).(string)
	if batchRole, _ := get(s.postBatch(t), "Integration", "Credentials", "Fn::GetAtt", 0).(string); batchRole != roleID {
		t.Errorf("/v1/batch uses role %s, /v1 role %s; want one role", batchRole, roleID)
	}
	role := s.resources("AWS::IAM::Role")[roleID]
	if p := get(role, "Properties", "ManagedPolicyArns"); p != nil {
		t.Errorf("ingest role has managed policies: %v", p)
	}
	trust := get(role, "Properties", "AssumeRolePolicyDocument", "Statement").([]any)
	if len(trust) != 1 || get(trust[0], "Principal", "Service") != "apigateway.amazonaws.com" {
		t.Errorf("ingest role trust = %v, want API Gateway only", trust)
	}
	st := s.policyStatements(roleID)
	if len(st) != 1 {
		t.Fatalf("ingest role has %d statements, want 1: %v", len(st), st)
	}
	if st[0]["Effect"] != "Allow" || strings.Join(strs(st[0]["Action"]), ",") != "kinesis:PutRecord,kinesis:PutRecords" {
		t.Errorf("statement = %v, want Allow kinesis:PutRecord and kinesis:PutRecords", st[0])
	}
	if r := strs(st[0]["Resource"]); len(r) != 1 || r[0] != "${"+streamID+".Arn}" {
		t.Errorf("statement resource = %v, want only the stream's ARN", r)
	}
}

// The stage throttles at what the stream can write, so clients get API
// Gateway's 429 before Kinesis throttles.
func TestStageThrottlingFollowsStreamCapacity(t *testing.T) {
	for _, c := range []struct {
		settings    map[string]any
		rate, burst float64
	}{{nil, 1000, 1000}, {customSettings, 4000, 4000}} {
		_, stage := synth(t, c.settings).only(t, "AWS::ApiGateway::Stage")
		ms := get(stage, "Properties", "MethodSettings", 0)
		if get(ms, "ThrottlingRateLimit") != c.rate || get(ms, "ThrottlingBurstLimit") != c.burst {
			t.Errorf("%v: throttling %v/%v, want %v/%v", c.settings["streamMode"], get(ms, "ThrottlingRateLimit"), get(ms, "ThrottlingBurstLimit"), c.rate, c.burst)
		}
	}
}

func TestThrottlingDefaultsDeriveFromShardsWithinAccountLimits(t *testing.T) {
	for _, c := range []struct {
		ctx         map[string]any
		rate, burst int
	}{
		{map[string]any{"shardCount": "3"}, 3000, 3000},
		{map[string]any{"shardCount": "12"}, 10000, 5000},
		{map[string]any{"shardCount": "12", "apiThrottleRate": "200"}, 200, 200},
		{map[string]any{"apiThrottleBurst": "50"}, 1000, 50},
	} {
		cfg, err := config.Load(c.ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := cfg.IngestAPIProps()
		if *p.ThrottleRate != c.rate || *p.ThrottleBurst != c.burst {
			t.Errorf("%v: rate/burst %d/%d, want %d/%d", c.ctx, *p.ThrottleRate, *p.ThrottleBurst, c.rate, c.burst)
		}
	}
}
