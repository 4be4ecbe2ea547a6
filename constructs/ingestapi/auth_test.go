package ingestapi_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/internal/ingest"
)

// kinesisRole is the logical id of the role both integrations run as.
func (s *synthesized) kinesisRole(t *testing.T) string {
	t.Helper()
	_, v1 := s.post(t, "v1")
	_, batch := s.post(t, "batch")
	id, _ := get(v1, "Integration", "Credentials", "Fn::GetAtt", 0).(string)
	if other, _ := get(batch, "Integration", "Credentials", "Fn::GetAtt", 0).(string); other != id {
		t.Fatalf("/v1 runs as %q, /v1/batch as %q: want one role", id, other)
	}
	return id
}

// API Gateway may put records to this one stream and nothing else: one
// statement, both actions, the stream's ARN; no managed or inline policy,
// trusted by API Gateway only. With a customer managed stream key it may
// also generate data keys with that key, and only that key.
func TestKinesisWriteRoleIsLeastPrivilege(t *testing.T) {
	for name, c := range map[string]struct {
		s       *synthesized
		withKey bool
	}{"aws/kinesis": {cfgIAM(), false}, "customer managed key": {cfgAPIKey(), true}} {
		s := c.s
		roleID := s.kinesisRole(t)
		role := s.resource(t, roleID)
		if role["Type"] != "AWS::IAM::Role" {
			t.Fatalf("%s: credentials %s are not a role", name, roleID)
		}
		p := role["Properties"].(map[string]any)
		if got := jsonOf(get(p, "AssumeRolePolicyDocument", "Statement")); got != `[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"}}]` {
			t.Errorf("%s: trust = %s, want API Gateway only", name, got)
		}
		if p["ManagedPolicyArns"] != nil || p["Policies"] != nil {
			t.Errorf("%s: managed policies %v, inline policies %v; want none", name, p["ManagedPolicyArns"], p["Policies"])
		}
		want := `[{"Action":["kinesis:PutRecord","kinesis:PutRecords"],"Effect":"Allow","Resource":{"Fn::GetAtt":["` + s.streamID + `","Arn"]}}`
		if c.withKey {
			keyID, _ := s.one(t, "AWS::KMS::Key", nil)
			cdktest.Expect(t, name+": the stream is encrypted with that key", func() {
				s.tpl.HasResourceProperties(jsii.String("AWS::Kinesis::Stream"), map[string]any{
					"StreamEncryption": map[string]any{"EncryptionType": "KMS", "KeyId": map[string]any{"Fn::GetAtt": []any{keyID, "Arn"}}},
				})
			})
			want += `,{"Action":"kms:GenerateDataKey","Effect":"Allow","Resource":{"Fn::GetAtt":["` + keyID + `","Arn"]}}`
		}
		want += "]"
		if got := jsonOf(cdktest.Statements(t, s.tpl, roleID)); got != want {
			t.Errorf("%s: statements\n %s\nwant\n %s", name, got, want)
		}
	}
}

// Each authorization mode sets both methods alike, and nothing else of the
// other modes: IAM signs with SigV4, no key, no usage plan, no APIG4
// suppression; API_KEY requires a key of a usage plan on this stage,
// throttled like the stage; NONE requires nothing and warns during synth.
// API_KEY and NONE are explicit choices, recorded as the APIG4 suppression
// on each method. No mode reports an error, only NONE a warning.
func TestAuthorizationModes(t *testing.T) {
	for _, c := range []struct {
		mode     ingest.Auth
		s        *synthesized
		authType string
		key      bool
		apig4    string // the reason's mark, or "" for no APIG4 suppression
		warnings int
	}{
		{ingest.AuthIAM, cfgIAM(), "AWS_IAM", false, "", 0},
		{ingest.AuthAPIKey, cfgAPIKey(), "NONE", true, "apiAuth=API_KEY was chosen explicitly", 0},
		{ingest.AuthNone, cfgNone(), "NONE", false, "apiAuth=NONE was chosen explicitly", 1},
	} {
		s := c.s
		if s.api.Auth() != c.mode {
			t.Errorf("%s: Auth() = %q", c.mode, s.api.Auth())
		}
		for path, m := range s.methods(t) {
			if m["AuthorizationType"] != c.authType || m["ApiKeyRequired"] != c.key {
				t.Errorf("%s %s: AuthorizationType %v, ApiKeyRequired %v; want %s, %v", c.mode, path, m["AuthorizationType"], m["ApiKeyRequired"], c.authType, c.key)
			}
		}
		// cdk-nag: COG4 on every method, APIG4 only for an explicit choice of a weaker mode.
		for id, m := range *s.tpl.FindResources(jsii.String("AWS::ApiGateway::Method"), nil) {
			var rules []string
			for _, r := range get(*m, "Metadata", "cdk_nag", "rules_to_suppress").([]any) {
				rules = append(rules, get(r, "id").(string))
				if get(r, "id") == "AwsSolutions-APIG4" && !strings.Contains(get(r, "reason").(string), c.apig4) {
					t.Errorf("%s: %s APIG4 reason %q, want it to say %q", c.mode, id, get(r, "reason"), c.apig4)
				}
			}
			sort.Strings(rules)
			want := "[AwsSolutions-COG4]"
			if c.apig4 != "" {
				want = "[AwsSolutions-APIG4 AwsSolutions-COG4]"
			}
			if fmt.Sprint(rules) != want {
				t.Errorf("%s: %s suppresses %v, want %s", c.mode, id, rules, want)
			}
		}
		// APIG3 (no WAF web ACL) is suppressed with a reason that holds for
		// the mode; with no authorization the warning stands.
		waf := map[ingest.Auth]string{ingest.AuthIAM: "SigV4", ingest.AuthAPIKey: "usage plan", ingest.AuthNone: ""}[c.mode]
		for _, r := range *s.tpl.FindResources(jsii.String("AWS::ApiGateway::Stage"), nil) {
			reasons := fmt.Sprint(get(*r, "Metadata", "cdk_nag", "rules_to_suppress"))
			if has := strings.Contains(reasons, "AwsSolutions-APIG3"); has != (waf != "") || !strings.Contains(reasons, waf) {
				t.Errorf("%s: stage suppressions %s, want APIG3 %v with a reason naming %q", c.mode, reasons, waf != "", waf)
			}
		}

		n := 0
		if c.key {
			n = 1
		}
		cdktest.Expect(t, fmt.Sprintf("%s: %d API key, usage plan, plan key", c.mode, n), func() {
			for _, typ := range []string{"AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::UsagePlanKey"} {
				s.tpl.ResourceCountIs(jsii.String(typ), jsii.Number(n))
			}
		})
		if c.key {
			apiID, _ := s.one(t, "AWS::ApiGateway::RestApi", nil)
			stageID, _ := s.one(t, "AWS::ApiGateway::Stage", nil)
			keyID, key := s.one(t, "AWS::ApiGateway::ApiKey", nil)
			planID, plan := s.one(t, "AWS::ApiGateway::UsagePlan", nil)
			if key["Enabled"] != true || key["Value"] != nil || key["Name"] != nil {
				t.Errorf("API key enabled %v, value %v, name %v: want enabled, generated value and name", key["Enabled"], key["Value"], key["Name"])
			}
			if got := jsonOf(plan["ApiStages"]); got != `[{"ApiId":{"Ref":"`+apiID+`"},"Stage":{"Ref":"`+stageID+`"},"Throttle":{}}]` {
				t.Errorf("usage plan stages = %s, want this API's stage only", got)
			}
			cdktest.Expect(t, "the key belongs to the plan", func() {
				s.tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::UsagePlanKey"), map[string]any{
					"KeyId": map[string]any{"Ref": keyID}, "KeyType": "API_KEY", "UsagePlanId": map[string]any{"Ref": planID},
				})
			})
			if got := jsonOf(cdktest.Resolved(s.stack, s.api.APIKeyID())); got != `{"Ref":"`+keyID+`"}` {
				t.Errorf("APIKeyID() = %s, want the key %s", got, keyID)
			}
		} else if s.api.APIKeyID() != nil || s.api.APIKey != nil {
			t.Errorf("%s: APIKeyID() = %v, want nil", c.mode, s.api.APIKeyID())
		}

		a := s.annotations
		if errs := *a.FindError(jsii.String("*"), assertions.Match_AnyValue()); len(errs) != 0 {
			t.Errorf("%s: errors %v", c.mode, messages(errs))
		}
		warnings := *a.FindWarning(jsii.String("*"), assertions.Match_AnyValue())
		if len(warnings) != c.warnings {
			t.Errorf("%s: warnings %v, want %d", c.mode, messages(warnings), c.warnings)
		}
		if c.warnings > 0 {
			cdktest.Expect(t, "NONE warns on the API", func() {
				a.HasWarning(jsii.String("/Test/Ingest/Api"), assertions.Match_StringLikeRegexp(
					jsii.String(`^apiAuth=NONE: anyone who knows the URL can write events to this pipeline\.`)))
			})
		}
	}
}

// messages are the paths and texts of synthesis messages, for failure output.
func messages(ms []*cxapi.SynthesisMessage) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s: %v", *m.Id, m.Entry.Data))
	}
	return out
}

// GrantInvoke allows execute-api:Invoke on exactly the stage's two POST
// methods: no other verb, path, stage or API, no wildcard. GrantReadAPIKey
// allows apigateway:GET on exactly the usage plan's key with API_KEY, and
// grants nothing (nil) in the other modes.
func TestGrants(t *testing.T) {
	for _, c := range []struct {
		s   *synthesized
		key bool
	}{{cfgIAM(), false}, {cfgAPIKey(), true}, {cfgNone(), false}} {
		s, mode := c.s, c.s.api.Auth()
		apiID, _ := s.one(t, "AWS::ApiGateway::RestApi", nil)
		stageID, _ := s.one(t, "AWS::ApiGateway::Stage", nil)
		prefix := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${" + apiID + "}/${" + stageID + "}/POST"
		want := []string{"Allow execute-api:Invoke on " + prefix + "/v1", "Allow execute-api:Invoke on " + prefix + "/v1/batch"}
		if c.key {
			keyID, _ := s.one(t, "AWS::ApiGateway::ApiKey", nil)
			want = append(want, "Allow apigateway:GET on arn:${AWS::Partition}:apigateway:${AWS::Region}::/apikeys/${"+keyID+"}")
		}
		statements := cdktest.Statements(t, s.tpl, s.grantee)
		var got []string
		for _, st := range statements {
			resources, ok := st["Resource"].([]any)
			if !ok {
				resources = []any{st["Resource"]}
			}
			for _, r := range resources {
				got = append(got, fmt.Sprintf("%v %s on %s", st["Effect"], strings.Join(cdktest.Actions([]map[string]any{st}), ","), cdktest.Joined(r)))
			}
			if st["Condition"] != nil || st["NotAction"] != nil || st["NotResource"] != nil {
				t.Errorf("%s: statement %v has conditions or Not*", mode, st)
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: grants\n %s\nwant\n %s", mode, strings.Join(got, "\n "), strings.Join(want, "\n "))
		}
		if strings.Contains(strings.Join(got, " "), "*") {
			t.Errorf("%s: a grant has a wildcard: %v", mode, got)
		}
		if s.invoke == nil || !*s.invoke.Success() {
			t.Errorf("%s: GrantInvoke returned %v, want a successful grant", mode, s.invoke)
		}
		if c.key != (s.readKey != nil) {
			t.Errorf("%s: GrantReadAPIKey returned %v, want a grant only with API_KEY", mode, s.readKey)
		}
		if c.key && !*s.readKey.Success() {
			t.Errorf("%s: GrantReadAPIKey did not succeed", mode)
		}
	}
}

// URL() and BatchURL() are the stage's /v1 and /v1/batch URLs.
func TestURLs(t *testing.T) {
	for _, s := range []*synthesized{cfgIAM(), cfgAPIKey()} {
		apiID, _ := s.one(t, "AWS::ApiGateway::RestApi", nil)
		stageID, _ := s.one(t, "AWS::ApiGateway::Stage", nil)
		base := "https://${" + apiID + "}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${" + stageID + "}"
		if got := cdktest.Joined(cdktest.Resolved(s.stack, s.api.URL())); got != base+"/v1" {
			t.Errorf("URL() = %s, want %s/v1", got, base)
		}
		if got := cdktest.Joined(cdktest.Resolved(s.stack, s.api.BatchURL())); got != base+"/v1/batch" {
			t.Errorf("BatchURL() = %s, want %s/v1/batch", got, base)
		}
	}
}
