package ingestapi_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/cdktest"
)

// The API has exactly two methods, POST /v1 and POST /v1/batch: no other
// resource, no other verb (no ANY, no OPTIONS), both validated by one
// validator that checks body and parameters, both declaring the answers the
// integration gives, with X-Partition-Key an optional header.
func TestOnlyTwoValidatedPostMethods(t *testing.T) {
	s := cfgIAM()
	cdktest.Expect(t, "two resources, two methods, one validator", func() {
		s.tpl.ResourceCountIs(jsii.String("AWS::ApiGateway::Resource"), jsii.Number(2))
		s.tpl.ResourceCountIs(jsii.String("AWS::ApiGateway::Method"), jsii.Number(2))
		s.tpl.ResourceCountIs(jsii.String("AWS::ApiGateway::RequestValidator"), jsii.Number(1))
	})
	validatorID, validator := s.one(t, "AWS::ApiGateway::RequestValidator", nil)
	if validator["ValidateRequestBody"] != true || validator["ValidateRequestParameters"] != true {
		t.Errorf("validator = %v, want body and parameters validated", validator)
	}
	for path, m := range s.methods(t) {
		if got := jsonOf(m["RequestValidatorId"]); got != `{"Ref":"`+validatorID+`"}` {
			t.Errorf("%s: RequestValidatorId = %s, want %s", path, got, validatorID)
		}
		if got := jsonOf(m["RequestParameters"]); got != `{"method.request.header.X-Partition-Key":false}` {
			t.Errorf("%s: RequestParameters = %s, want only the optional X-Partition-Key header", path, got)
		}
		if got := jsonOf(m["MethodResponses"]); got != `[{"StatusCode":"200"},{"StatusCode":"400"},{"StatusCode":"413"},{"StatusCode":"429"},{"StatusCode":"500"}]` {
			t.Errorf("%s: MethodResponses = %s, want 200, 400, 413, 429, 500", path, got)
		}
	}
}

// /v1 takes one JSON object, /v1/batch an array of 1 to 500 JSON objects
// (PutRecords' limit): draft-04 models for application/json, and no other
// content type.
func TestRequestModels(t *testing.T) {
	s := cfgIAM()
	apiID, _ := s.one(t, "AWS::ApiGateway::RestApi", nil)
	for path, want := range map[string]string{
		"/v1":       `{"$schema":"http://json-schema.org/draft-04/schema#","description":"One event: a JSON object","title":"Event","type":"object"}`,
		"/v1/batch": `{"$schema":"http://json-schema.org/draft-04/schema#","description":"1 to 500 events, each a JSON object","items":{"type":"object"},"maxItems":500,"minItems":1,"title":"Batch","type":"array"}`,
	} {
		m := s.methods(t)[path]
		if got := keys(m["RequestModels"]); fmt.Sprint(got) != "[application/json]" {
			t.Errorf("%s: request models for %v, want application/json only", path, got)
		}
		modelID, _ := get(m, "RequestModels", "application/json", "Ref").(string)
		model := get(s.resource(t, modelID), "Properties")
		if get(model, "ContentType") != "application/json" || jsonOf(get(model, "RestApiId")) != `{"Ref":"`+apiID+`"}` {
			t.Errorf("%s: model %s content type %v of API %v", path, modelID, get(model, "ContentType"), get(model, "RestApiId"))
		}
		if got := jsonOf(get(model, "Schema")); got != want {
			t.Errorf("%s: schema = %s\nwant %s", path, got, want)
		}
	}
	cdktest.Expect(t, "two models", func() { s.tpl.ResourceCountIs(jsii.String("AWS::ApiGateway::Model"), jsii.Number(2)) })
}

// Each method calls Kinesis directly (PutRecord for /v1; for /v1/batch,
// PutRecord with recordPacking PACKED, the default, and PutRecords with
// PER_EVENT) as the Kinesis write role, with Kinesis's JSON content type, a
// request template for application/json only, and passthrough NEVER, so any
// other content type gets 415 instead of reaching Kinesis raw. The request
// template names this stream. (What the templates render is tested in test/.)
func TestIntegrationCallsKinesis(t *testing.T) {
	for _, c := range []struct {
		s     *synthesized
		batch string
	}{{cfgIAM(), "PutRecord"}, {cfgAPIKey(), "PutRecords"}} {
		integrationCallsKinesis(t, c.s, c.batch)
	}
}

func integrationCallsKinesis(t *testing.T, s *synthesized, batchAction string) {
	t.Helper()
	roleID, _ := s.one(t, "AWS::IAM::Role", map[string]any{
		"AssumeRolePolicyDocument": map[string]any{"Statement": []any{map[string]any{
			"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": map[string]any{"Service": "apigateway.amazonaws.com"},
		}}},
		"ManagedPolicyArns": assertions.Match_Absent(),
	})
	for path, action := range map[string]string{"/v1": "PutRecord", "/v1/batch": batchAction} {
		integ := get(s.methods(t)[path], "Integration")
		if get(integ, "Type") != "AWS" || get(integ, "IntegrationHttpMethod") != "POST" {
			t.Errorf("%s: integration %v %v, want AWS POST", path, get(integ, "Type"), get(integ, "IntegrationHttpMethod"))
		}
		if got := cdktest.Joined(get(integ, "Uri")); got != "arn:${AWS::Partition}:apigateway:${AWS::Region}:kinesis:action/"+action {
			t.Errorf("%s: Uri = %s, want kinesis:action/%s", path, got, action)
		}
		if got := jsonOf(get(integ, "Credentials")); got != `{"Fn::GetAtt":["`+roleID+`","Arn"]}` {
			t.Errorf("%s: Credentials = %s, want the Kinesis write role %s", path, got, roleID)
		}
		if got := get(integ, "PassthroughBehavior"); got != "NEVER" {
			t.Errorf("%s: PassthroughBehavior = %v, want NEVER", path, got)
		}
		if got := jsonOf(get(integ, "RequestParameters")); got != `{"integration.request.header.Content-Type":"'application/x-amz-json-1.1'"}` {
			t.Errorf("%s: RequestParameters = %s, want only Content-Type application/x-amz-json-1.1", path, got)
		}
		if got := keys(get(integ, "RequestTemplates")); fmt.Sprint(got) != "[application/json]" {
			t.Errorf("%s: request templates for %v, want application/json only", path, got)
		}
		// The template refers to the stream by its Ref, and to nothing else of the stack.
		tpl := cdktest.Joined(get(integ, "RequestTemplates", "application/json"))
		refs := regexp.MustCompile(`\$\{([A-Za-z0-9]+)\}`).FindAllStringSubmatch(tpl, -1)
		if len(refs) != 1 || refs[0][1] != s.streamID {
			t.Errorf("%s: request template refers to %v, want the stream %s once", path, refs, s.streamID)
		}
	}
}

// A write that did not happen never answers 200: only a 2xx from Kinesis
// selects 200, a 4xx selects the 400 response (whose template turns
// throttling into 429 and server-side conditions into 500: rendered in
// test/), and anything else falls to the default, 500. Each answer is JSON.
func TestIntegrationResponsesSelectByKinesisStatus(t *testing.T) {
	s := cfgIAM()
	for path, m := range s.methods(t) {
		responses, _ := get(m, "Integration", "IntegrationResponses").([]any)
		var got []string
		for _, r := range responses {
			p, hasPattern := get(r, "SelectionPattern").(string)
			if !hasPattern {
				p = "(default)"
			}
			got = append(got, fmt.Sprintf("%v:%s:%v", get(r, "StatusCode"), p, keys(get(r, "ResponseTemplates"))))
		}
		if want := `200:2\d{2}:[application/json] 400:4\d{2}:[application/json] 500:(default):[application/json]`; strings.Join(got, " ") != want {
			t.Errorf("%s: integration responses\n %s\nwant\n %s", path, strings.Join(got, " "), want)
			continue
		}
		// API Gateway matches the whole status code against the pattern.
		for pattern, statuses := range map[string]map[string]bool{
			get(responses[0], "SelectionPattern").(string): {"200": true, "299": true, "400": false, "429": false, "500": false, "503": false, "20": false},
			get(responses[1], "SelectionPattern").(string): {"400": true, "429": true, "413": true, "200": false, "500": false, "503": false},
		} {
			re := regexp.MustCompile(`^(?:` + pattern + `)$`)
			for status, want := range statuses {
				if re.MatchString(status) != want {
					t.Errorf("%s: pattern %s matches Kinesis status %s: %v, want %v", path, pattern, status, !want, want)
				}
			}
		}
		// The 400 template is the one that can override the status (to 413, 429 or 500).
		clientErr, _ := get(responses[1], "ResponseTemplates", "application/json").(string)
		for _, want := range []string{"#set($context.responseOverride.status = 413)", "#set($context.responseOverride.status = 429)", "#set($context.responseOverride.status = 500)"} {
			if !strings.Contains(clientErr, want) {
				t.Errorf("%s: 4xx response template lacks %s", path, want)
			}
		}
	}
}

// API Gateway's own errors answer JSON with a message: a bad body 400 (with
// the validation error), a wrong content type 415, too large 413, throttled
// 429, and every other 4xx and 5xx with API Gateway's message. The bodies
// are substitution templates: filled as documented, they must parse.
func TestGatewayResponsesAreJSON(t *testing.T) {
	s := cfgIAM()
	apiID, _ := s.one(t, "AWS::ApiGateway::RestApi", nil)
	want := map[string]string{
		"BAD_REQUEST_BODY": "400", "UNSUPPORTED_MEDIA_TYPE": "415", "REQUEST_TOO_LARGE": "413",
		"THROTTLED": "429", "DEFAULT_4XX": "(as API Gateway's)", "DEFAULT_5XX": "(as API Gateway's)",
	}
	got := map[string]string{}
	for id, r := range *s.tpl.FindResources(jsii.String("AWS::ApiGateway::GatewayResponse"), nil) {
		p := (*r)["Properties"].(map[string]any)
		typ, _ := p["ResponseType"].(string)
		status, ok := p["StatusCode"].(string)
		if !ok {
			status = "(as API Gateway's)"
		}
		got[typ] = status
		if jsonOf(p["RestApiId"]) != `{"Ref":"`+apiID+`"}` {
			t.Errorf("%s: RestApiId = %v", id, p["RestApiId"])
		}
		if k := keys(p["ResponseTemplates"]); fmt.Sprint(k) != "[application/json]" {
			t.Errorf("%s (%s): templates for %v, want application/json only", id, typ, k)
		}
		body, _ := get(p, "ResponseTemplates", "application/json").(string)
		filled := strings.NewReplacer(
			// a quoted JSON string, as documented
			"$context.error.messageString", `"Missing Authentication Token"`,
			// assumed to arrive JSON-escaped (no offline check can confirm it)
			"$context.error.validationErrorString", `[instance type (array) does not match any allowed primitive type (allowed: [\"object\"])]`,
		).Replace(body)
		var parsed map[string]any
		if err := json.Unmarshal([]byte(filled), &parsed); err != nil {
			t.Errorf("%s (%s): body is not JSON once filled: %v: %s", id, typ, err, body)
			continue
		}
		if msg, _ := parsed["message"].(string); msg == "" {
			t.Errorf("%s (%s): no message: %s", id, typ, body)
		}
		if typ == "BAD_REQUEST_BODY" && !strings.Contains(fmt.Sprint(parsed["validationErrors"]), "does not match") {
			t.Errorf("400 body does not carry the validation error: %s", body)
		}
		if strings.HasPrefix(typ, "DEFAULT_") && parsed["message"] != "Missing Authentication Token" {
			t.Errorf("%s: message %v, want API Gateway's own", typ, parsed["message"])
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("gateway responses = %v\nwant %v", got, want)
	}
}

// API Gateway decompresses requests sent with Content-Encoding gzip or
// deflate before the templates run, for any size (MinimumCompressionSize 0).
func TestRequestsMayBeCompressed(t *testing.T) {
	for _, s := range []*synthesized{cfgIAM(), cfgAPIKey()} {
		cdktest.Expect(t, "MinimumCompressionSize 0", func() {
			s.tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::RestApi"), map[string]any{"MinimumCompressionSize": 0})
		})
	}
}
