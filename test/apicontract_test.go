package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
)

// Two more configurations: an API key with X-Ray, and no authorization.
var (
	apiKeySettings = map[string]any{"apiAuth": "API_KEY", "apiTracing": "true", "apiEndpointType": "EDGE"}
	openSettings   = map[string]any{"apiAuth": "NONE", "producerHost": "false"}
)

func TestBatchMethodValidatesAnArrayOf1To500Objects(t *testing.T) {
	s := synth(t, nil)
	m := s.postBatch(t)
	model := s.resources("AWS::ApiGateway::Model")[get(m, "RequestModels", "application/json", "Ref").(string)]
	schema := get(model, "Properties", "Schema")
	got := fmt.Sprint(get(schema, "$schema"), " ", get(schema, "type"), " ", get(schema, "minItems"), "..", get(schema, "maxItems"), " of ", get(schema, "items", "type"))
	if want := "http://json-schema.org/draft-04/schema# array 1..500 of object"; got != want {
		t.Errorf("batch schema = %s, want %s", got, want)
	}
	if get(m, "RequestValidatorId") == nil || fmt.Sprint(get(m, "RequestValidatorId")) != fmt.Sprint(get(s.postV1(t), "RequestValidatorId")) {
		t.Errorf("/v1/batch is not validated like /v1: %v", get(m, "RequestValidatorId"))
	}
	integ := get(m, "Integration")
	if got := joined(get(integ, "Uri")); !strings.HasSuffix(got, ":kinesis:action/PutRecords") || get(integ, "PassthroughBehavior") != "NEVER" {
		t.Errorf("batch integration = %s passthrough %v", got, get(integ, "PassthroughBehavior"))
	}
}

// API Gateway's own errors are JSON with a message. Gateway-response
// templates are plain substitution, emulated here: $context.error.messageString
// is a quoted JSON string (as documented); validationErrorString is assumed to
// arrive JSON-escaped, which no offline check can confirm.
func TestGatewayResponsesAreJSONWithAMessage(t *testing.T) {
	s := synth(t, nil)
	want := map[string]string{
		"BAD_REQUEST_BODY": "400", "UNSUPPORTED_MEDIA_TYPE": "415", "REQUEST_TOO_LARGE": "413",
		"THROTTLED": "429", "DEFAULT_4XX": "", "DEFAULT_5XX": "",
	}
	got := map[string]string{}
	for id, r := range s.resources("AWS::ApiGateway::GatewayResponse") {
		p := props(r)
		typ := p["ResponseType"].(string)
		status, _ := p["StatusCode"].(string)
		got[typ] = status
		body := get(p, "ResponseTemplates", "application/json").(string)
		body = strings.NewReplacer(
			"$context.error.messageString", `"Missing Authentication Token"`,
			"$context.error.validationErrorString", `[instance type (array) does not match any allowed primitive type (allowed: [\"object\"])]`,
		).Replace(body)
		var parsed map[string]any
		if err := json.Unmarshal([]byte(body), &parsed); err != nil {
			t.Errorf("%s (%s): body is not JSON: %v: %s", id, typ, err, body)
			continue
		}
		if msg, _ := parsed["message"].(string); msg == "" {
			t.Errorf("%s (%s): no message: %s", id, typ, body)
		}
		if typ == "BAD_REQUEST_BODY" && !strings.Contains(fmt.Sprint(parsed["validationErrors"]), "does not match") {
			t.Errorf("400 body does not carry the validation error: %s", body)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("gateway responses = %v, want %v", got, want)
	}
}

func TestAuthorizationModes(t *testing.T) {
	for _, c := range []struct {
		name      string
		settings  map[string]any
		authType  string
		keyNeeded bool
		example   string
	}{
		{"IAM", nil, "AWS_IAM", false, `--aws-sigv4 "aws:amz:${AWS::Region}:execute-api"`},
		{"API_KEY", apiKeySettings, "NONE", true, `-H "x-api-key: $(aws apigateway get-api-key --include-value --query value --output text --api-key ${`},
		{"NONE", openSettings, "NONE", false, `curl -sS --fail-with-body -H "Content-Type: application/json"`},
	} {
		s := synth(t, c.settings)
		for path, m := range map[string]map[string]any{"/v1": s.postV1(t), "/v1/batch": s.postBatch(t)} {
			required, _ := m["ApiKeyRequired"].(bool)
			if m["AuthorizationType"] != c.authType || required != c.keyNeeded {
				t.Errorf("%s %s: authorization %v, key required %v; want %s, %v", c.name, path, m["AuthorizationType"], required, c.authType, c.keyNeeded)
			}
		}
		keys, plans := s.resources("AWS::ApiGateway::ApiKey"), s.resources("AWS::ApiGateway::UsagePlan")
		example := joined(get(s.json, "Outputs", "ExampleRequest", "Value"))
		if !strings.Contains(example, c.example) {
			t.Errorf("%s: example request lacks %q: %s", c.name, c.example, example)
		}
		if !c.keyNeeded {
			if len(keys)+len(plans) != 0 || get(s.json, "Outputs", "ApiKeyId") != nil {
				t.Errorf("%s: %d API keys, %d usage plans, key output %v; want none", c.name, len(keys), len(plans), get(s.json, "Outputs", "ApiKeyId"))
			}
			continue
		}
		keyID, _ := s.only(t, "AWS::ApiGateway::ApiKey")
		apiID, _ := s.only(t, "AWS::ApiGateway::RestApi")
		stageID, _ := s.only(t, "AWS::ApiGateway::Stage")
		_, plan := s.only(t, "AWS::ApiGateway::UsagePlan")
		if get(plan, "Properties", "ApiStages", 0, "ApiId", "Ref") != apiID || get(plan, "Properties", "ApiStages", 0, "Stage", "Ref") != stageID {
			t.Errorf("usage plan stages = %v, want this API's stage", get(plan, "Properties", "ApiStages"))
		}
		if get(plan, "Properties", "Throttle", "RateLimit") != 1000.0 || get(plan, "Properties", "Throttle", "BurstLimit") != 1000.0 {
			t.Errorf("usage plan throttle = %v, want the stage's 1000/1000", get(plan, "Properties", "Throttle"))
		}
		_, pk := s.only(t, "AWS::ApiGateway::UsagePlanKey")
		if get(pk, "Properties", "KeyId", "Ref") != keyID {
			t.Errorf("usage plan key = %v, want %s", get(pk, "Properties", "KeyId"), keyID)
		}
		if get(s.json, "Outputs", "ApiKeyId", "Value", "Ref") != keyID {
			t.Errorf("ApiKeyId output = %v", get(s.json, "Outputs", "ApiKeyId"))
		}
	}
}

// API_KEY and NONE are explicit choices: nag's APIG4 is suppressed on each
// method with that reason, NONE also warns during synth, and nothing else is
// reported.
func TestNonIAMAuthIsAnExplicitChoice(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		warnings []string
	}{{apiKeySettings, nil}, {openSettings, []string{"apiAuth=NONE: anyone who knows the URL can write events to this pipeline."}}} {
		s := synth(t, c.settings)
		var warnings []string
		for _, m := range s.messages {
			switch m.level {
			case cxapi.SynthesisMessageLevel_WARNING:
				warnings = append(warnings, strings.TrimSuffix(m.text, " [ack: tributary:apiAuthNone]"))
			case cxapi.SynthesisMessageLevel_ERROR:
				t.Errorf("%v: error %s", c.settings, m.text)
			}
		}
		if fmt.Sprint(warnings) != fmt.Sprint(c.warnings) {
			t.Errorf("%v: warnings %q, want %q", c.settings, warnings, c.warnings)
		}
		got, _ := s.suppressions(t)
		for method := range s.resources("AWS::ApiGateway::Method") {
			reason := got[suppression{method, "AwsSolutions-APIG4", ""}]
			if !strings.Contains(reason, "apiAuth="+c.settings["apiAuth"].(string)+" was chosen explicitly") {
				t.Errorf("%v: method %s APIG4 suppression reason %q", c.settings, method, reason)
			}
		}
	}
	def, _ := synth(t, nil).suppressions(t)
	for k := range def {
		if k.rule == "AwsSolutions-APIG4" {
			t.Errorf("IAM mode suppresses APIG4 on %s", k.resource)
		}
	}
}

func TestTracingIsASetting(t *testing.T) {
	for settings, want := range map[*map[string]any]bool{nil: false, &apiKeySettings: true} {
		var st map[string]any
		if settings != nil {
			st = *settings
		}
		_, stage := synth(t, st).only(t, "AWS::ApiGateway::Stage")
		if got, _ := get(stage, "Properties", "TracingEnabled").(bool); got != want {
			t.Errorf("%v: TracingEnabled = %v, want %v", st, got, want)
		}
	}
}

func TestEndpointTypeIsRegionalByDefault(t *testing.T) {
	for settings, want := range map[*map[string]any]string{nil: "[REGIONAL]", &apiKeySettings: "[EDGE]"} {
		var st map[string]any
		if settings != nil {
			st = *settings
		}
		_, api := synth(t, st).only(t, "AWS::ApiGateway::RestApi")
		if got := fmt.Sprint(strs(get(api, "Properties", "EndpointConfiguration", "Types"))); got != want {
			t.Errorf("%v: endpoint types %s, want %s", st, got, want)
		}
	}
}
