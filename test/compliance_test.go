package test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// Every configuration passes cdk-nag's AwsSolutions pack: no unsuppressed
// error or warning. (TestSynthesizesWithoutErrorsOrWarnings catches any other
// annotation; this one names the nag findings.)
func TestAwsSolutionsPackHasNoUnsuppressedFindings(t *testing.T) {
	for _, settings := range []map[string]any{nil, customSettings} {
		s := synth(t, settings)
		for _, m := range s.messages {
			if strings.Contains(m.text, "AwsSolutions-") && m.serious() {
				t.Errorf("%s: %s at %s: %s", *s.stack.StackName(), m.level, m.path, m.text)
			}
		}
	}
}

// The CloudFormation validator built into aws-cdk-lib reports nothing, at any
// severity, for any configuration.
func TestTemplateValidatorHasNoFindings(t *testing.T) {
	for _, settings := range []map[string]any{nil, customSettings} {
		s := synth(t, settings)
		for _, p := range s.report.PluginReports { // the validator leaves no report when it finds nothing
			for _, v := range p.Violations {
				t.Errorf("%s: %s %s %s: %s", *s.stack.StackName(), p.PluginName, v.Severity, v.RuleName, v.Description)
			}
		}
	}
	ctx := cdkJSONContext(t)
	if ctx["@aws-cdk/core:validateAgainstDefaultRules"] != true {
		t.Error("cdk.json must turn validator findings into errors (@aws-cdk/core:validateAgainstDefaultRules)")
	}
}

// suppression is one cdk-nag suppression as recorded in a resource's metadata.
type suppression struct {
	resource, rule, appliesTo string
}

// suppressions are those of every stack of the app (logical ids are unique
// enough across our stacks for the pinning below).
func (s *synthesized) suppressions(t *testing.T) (map[suppression]string, []string) {
	out := map[suppression]string{}
	var list []string
	resources := map[string]any{}
	for _, tpl := range s.templates() {
		for id, r := range tpl["Resources"].(map[string]any) {
			resources[id] = r
		}
	}
	for id, r := range resources {
		rules, _ := get(r, "Metadata", "cdk_nag", "rules_to_suppress").([]any)
		for _, rule := range rules {
			applies := strings.Join(strs(get(rule, "applies_to")), ",")
			k := suppression{id, get(rule, "id").(string), applies}
			out[k] = get(rule, "reason").(string)
			list = append(list, fmt.Sprintf("%s %s [%s]", id, k.rule, applies))
		}
	}
	sort.Strings(list)
	return out, list
}

// idOf finds the one resource of a type whose properties satisfy pick.
func (s *synthesized) idOf(t *testing.T, typ string, pick func(map[string]any) bool) string {
	t.Helper()
	var ids []string
	for id, r := range s.resources(typ) {
		if pick(r) {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("want one %s matching, got %v", typ, ids)
	}
	return ids[0]
}

// Each suppression sits on exactly one resource, for one rule and, where the
// rule has several findings, one finding; nothing else is suppressed.
func TestSuppressionsArePinnedToTheirResources(t *testing.T) {
	for _, settings := range []map[string]any{nil, customSettings} {
		s := synth(t, settings)
		dataBucket := s.dataBucket(t)
		logBucket := s.idOf(t, "AWS::S3::Bucket", func(r map[string]any) bool { return get(r, "Properties", "VersioningConfiguration") == nil })
		stage, _ := s.only(t, "AWS::ApiGateway::Stage")
		deliveryStream, ds := s.only(t, "AWS::KinesisFirehose::DeliveryStream")
		firehosePolicy := fmt.Sprint(get(ds, "DependsOn", 0))
		want := map[suppression]bool{
			{logBucket, "AwsSolutions-S1", ""}:                                            true,
			{stage, "AwsSolutions-APIG3", ""}:                                             true,
			{deliveryStream, "AwsSolutions-KDF1", ""}:                                     true,
			{firehosePolicy, "AwsSolutions-IAM5", "Resource::<" + dataBucket + ".Arn>/*"}: true,
		}
		for method := range s.resources("AWS::ApiGateway::Method") { // machines, not users
			want[suppression{method, "AwsSolutions-COG4", ""}] = true
		}
		if settings == nil { // CREATE: the API Gateway account role, with AWS's managed policy
			role := s.idOf(t, "AWS::IAM::Role", func(r map[string]any) bool {
				return strings.Contains(fmt.Sprint(get(r, "Properties", "ManagedPolicyArns")), "AmazonAPIGatewayPushToCloudWatchLogs")
			})
			want[suppression{role, "AwsSolutions-IAM4", "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}] = true
		} else { // CUSTOMER_MANAGED: the key was chosen on purpose
			streamID, _ := s.only(t, "AWS::Kinesis::Stream")
			want[suppression{streamID, "AwsSolutions-KDS3", ""}] = true
		}
		for id := range resourcesOf(s.monitoring.json, "AWS::SNS::Topic") { // alarms cannot publish to aws/sns-encrypted topics
			want[suppression{id, "AwsSolutions-SNS2", ""}] = true
		}
		if s.producer != nil { // the host: disposable, and Session Manager's managed policy
			for id := range resourcesOf(s.producer.json, "AWS::EC2::Instance") {
				want[suppression{id, "AwsSolutions-EC29", ""}] = true
			}
			for id, r := range resourcesOf(s.producer.json, "AWS::IAM::Role") {
				if strings.Contains(fmt.Sprint(get(r, "Properties", "AssumeRolePolicyDocument")), "ec2.amazonaws.com") {
					want[suppression{id, "AwsSolutions-IAM4", "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"}] = true
				}
			}
		}
		got, list := s.suppressions(t)
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: missing suppression %+v; have %v", *s.stack.StackName(), k, list)
			}
		}
		for k, reason := range got {
			if !want[k] {
				t.Errorf("%s: unexpected suppression %+v (%s)", *s.stack.StackName(), k, reason)
			}
			if len(reason) < 80 {
				t.Errorf("%s: suppression %+v has no specific reason: %q", *s.stack.StackName(), k, reason)
			}
		}
	}
}

// Every log group expires its events.
func TestEveryLogGroupHasARetention(t *testing.T) {
	for settings, days := range map[*map[string]any]float64{nil: 30, &customSettings: 7} {
		var st map[string]any
		if settings != nil {
			st = *settings
		}
		s := synth(t, st)
		if n := len(s.resources("AWS::Logs::LogGroup")); n < 3 {
			t.Errorf("want at least the access, execution and delivery-error log groups, got %d", n)
		}
		for name, tpl := range s.templates() {
			groups := resourcesOf(tpl, "AWS::Logs::LogGroup")
			for id, g := range groups {
				if get(g, "Properties", "RetentionInDays") != days {
					t.Errorf("%s: log group %s RetentionInDays = %v, want %v", name, id, get(g, "Properties", "RetentionInDays"), days)
				}
			}
			// Lambda functions (CDK's bucket emptier and default-security-group
			// restricter) log to one of these groups, not to a group of their own.
			for id, f := range resourcesOf(tpl, "AWS::Lambda::Function") {
				ref, _ := get(f, "Properties", "LoggingConfig", "LogGroup", "Ref").(string)
				if _, ok := groups[ref]; !ok {
					t.Errorf("%s: function %s logs to %v, not a log group with a retention", name, id, get(f, "Properties", "LoggingConfig"))
				}
			}
		}
	}
}
