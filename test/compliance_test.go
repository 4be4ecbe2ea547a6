package test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
)

// Every configuration passes cdk-nag's AwsSolutions pack on every stack: no
// unsuppressed error or warning, but for the web ACL (APIG3) an open API
// (apiAuth=NONE) should have. (TestSynthesizesWithoutErrorsOrWarnings catches
// any other annotation; this one names the nag findings.)
func TestAwsSolutionsPackHasNoUnsuppressedFindings(t *testing.T) {
	for _, settings := range everySettings {
		a := synth(t, settings)
		apig3 := false
		for _, m := range a.messages {
			if settings["apiAuth"] == "NONE" && strings.Contains(m.text, "AwsSolutions-APIG3") && m.level == cxapi.SynthesisMessageLevel_WARNING {
				apig3 = true
				continue
			}
			if strings.Contains(m.text, "AwsSolutions-") && m.serious() {
				t.Errorf("%v: %s at %s: %s", settings, m.level, m.path, m.text)
			}
		}
		if want := settings["apiAuth"] == "NONE"; apig3 != want {
			t.Errorf("%v: APIG3 warning given: %v, want %v", settings, apig3, want)
		}
	}
}

// The CloudFormation validator built into aws-cdk-lib reports nothing, at any
// severity, for any configuration, and cdk.json makes its findings errors.
func TestTemplateValidatorHasNoFindings(t *testing.T) {
	for _, settings := range everySettings {
		a := synth(t, settings)
		for _, p := range a.report.PluginReports { // the validator leaves no report when it finds nothing
			if p.PluginName == "Construct Annotations" {
				continue // annotations: TestSynthesizesWithoutErrorsOrWarnings
			}
			for _, v := range p.Violations {
				t.Errorf("%v: %s %s %s: %s", settings, p.PluginName, v.Severity, v.RuleName, v.Description)
			}
		}
	}
	if cdkJSONContext(t)["@aws-cdk/core:validateAgainstDefaultRules"] != true {
		t.Error("cdk.json must turn validator findings into errors (@aws-cdk/core:validateAgainstDefaultRules)")
	}
}

// Synthesis leaves no error or warning annotation, whatever its source,
// except the warning apiAuth=NONE must give.
func TestSynthesizesWithoutErrorsOrWarnings(t *testing.T) {
	for _, settings := range everySettings {
		warned := false
		for _, m := range synth(t, settings).messages {
			if strings.Contains(m.text, "apiAuth=NONE: anyone who knows the URL can write events") ||
				settings["apiAuth"] == "NONE" && strings.Contains(m.text, "AwsSolutions-APIG3") {
				warned = true
				continue
			}
			if m.serious() {
				t.Errorf("%v: %s at %s: %s", settings, m.level, m.path, m.text)
			}
		}
		if want := settings["apiAuth"] == "NONE"; warned != want {
			t.Errorf("%v: NONE warning given: %v, want %v", settings, warned, want)
		}
	}
}

// suppression is one cdk-nag suppression as recorded in a resource's metadata.
type suppression struct {
	stack, resource, rule, appliesTo string
}

// Each suppression sits on exactly one resource, for one rule and, where the
// rule has several findings, one finding; nothing else is suppressed, and
// each says why.
func TestSuppressionsArePinnedToTheirResources(t *testing.T) {
	for _, settings := range everySettings {
		a := synth(t, settings)
		want := map[suppression]bool{}
		add := func(stack, typ string, pick func(id string, r map[string]any) bool, rule, appliesTo string) {
			n := 0
			for id, r := range resourcesOf(a.templates[stack], typ) {
				if pick(id, r) {
					want[suppression{stack, id, rule, appliesTo}] = true
					n++
				}
			}
			if n == 0 {
				t.Errorf("%v: no %s in %s for %s", settings, typ, stack, rule)
			}
		}
		all := func(string, map[string]any) bool { return true }
		pipeline := *a.stacks.Pipeline.StackName()
		var data string // the data bucket is the versioned one
		for id, r := range resourcesOf(a.pipeline(), "AWS::S3::Bucket") {
			if get(r, "Properties", "VersioningConfiguration") != nil {
				data = id
			}
		}
		// The access-log bucket is the one that logs nowhere.
		add(pipeline, "AWS::S3::Bucket", func(_ string, r map[string]any) bool {
			return get(r, "Properties", "LoggingConfiguration") == nil
		}, "AwsSolutions-S1", "")
		if settings["apiAuth"] != "NONE" { // open by choice: nag's WAF warning stands
			add(pipeline, "AWS::ApiGateway::Stage", all, "AwsSolutions-APIG3", "")
		}
		add(pipeline, "AWS::KinesisFirehose::DeliveryStream", all, "AwsSolutions-KDF1", "")
		add(pipeline, "AWS::IAM::Policy", func(id string, _ map[string]any) bool {
			return isDependencyOf(a.pipeline(), id, "AWS::KinesisFirehose::DeliveryStream") // Firehose's one policy
		}, "AwsSolutions-IAM5", "Resource::<"+data+".Arn>/*")
		// The query policy: object keys under the tables' prefixes and in the results bucket.
		var results string
		for id, r := range resourcesOf(a.pipeline(), "AWS::S3::Bucket") {
			if strings.Contains(fmt.Sprint(get(r, "Properties", "LoggingConfiguration")), "query-results-bucket/") {
				results = id
			}
		}
		objects := "Resource::<" + results + ".Arn>/*"
		for _, p := range []string{a.stacks.Pipeline.Pipeline.Delivery.DataPrefix, a.settings.Pipeline.Delivery.ErrorPrefixInForce()} {
			objects += ",Resource::<" + data + ".Arn>/" + p + "*"
		}
		add(pipeline, "AWS::IAM::ManagedPolicy", all, "AwsSolutions-IAM5", objects)
		add(pipeline, "AWS::ApiGateway::Method", all, "AwsSolutions-COG4", "") // machines, not users
		switch settings["apiAuth"] {
		case "API_KEY", "NONE":
			add(pipeline, "AWS::ApiGateway::Method", all, "AwsSolutions-APIG4", "")
		}
		if settings["apiCloudWatchRole"] != "EXISTING" {
			add(pipeline, "AWS::IAM::Role", func(_ string, r map[string]any) bool {
				return strings.Contains(fmt.Sprint(get(r, "Properties", "ManagedPolicyArns")), "AmazonAPIGatewayPushToCloudWatchLogs")
			}, "AwsSolutions-IAM4", "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
		}
		if settings["streamEncryption"] == "CUSTOMER_MANAGED" {
			add(pipeline, "AWS::Kinesis::Stream", all, "AwsSolutions-KDS3", "")
		}
		add(*a.stacks.Monitoring.StackName(), "AWS::SNS::Topic", all, "AwsSolutions-SNS2", "")
		if a.stacks.Producer != nil {
			producer := *a.stacks.Producer.StackName()
			add(producer, "AWS::EC2::Instance", all, "AwsSolutions-EC29", "")
			add(producer, "AWS::IAM::Role", func(_ string, r map[string]any) bool {
				return strings.Contains(fmt.Sprint(get(r, "Properties", "AssumeRolePolicyDocument")), "ec2.amazonaws.com")
			}, "AwsSolutions-IAM4", "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore")
			// The telemetry policy: PutMetricData's "*" (under its namespace
			// condition) alone; its log group's Arn is no finding.
			add(producer, "AWS::IAM::Policy", func(_ string, r map[string]any) bool {
				return strings.Contains(fmt.Sprint(get(r, "Properties", "PolicyDocument")), "cloudwatch:PutMetricData")
			}, "AwsSolutions-IAM5", "Resource::*")
		}

		got := map[suppression]string{}
		var list []string
		for stack, tpl := range a.templates {
			for id, r := range tpl["Resources"].(map[string]any) {
				rules, _ := get(r, "Metadata", "cdk_nag", "rules_to_suppress").([]any)
				for _, rule := range rules {
					k := suppression{stack, id, get(rule, "id").(string), strings.Join(strs(get(rule, "applies_to")), ",")}
					got[k] = get(rule, "reason").(string)
					list = append(list, fmt.Sprint(k))
				}
			}
		}
		sort.Strings(list)
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("%v: missing suppression %+v; have %v", settings, k, list)
			}
		}
		for k, reason := range got {
			if !want[k] {
				t.Errorf("%v: unexpected suppression %+v (%s)", settings, k, reason)
			}
			if len(reason) < 80 {
				t.Errorf("%v: suppression %+v has no specific reason: %q", settings, k, reason)
			}
		}
	}
}

// isDependencyOf tells whether a resource of type typ depends on id.
func isDependencyOf(tpl map[string]any, id, typ string) bool {
	for _, r := range resourcesOf(tpl, typ) {
		for _, d := range strs(r["DependsOn"]) {
			if d == id {
				return true
			}
		}
	}
	return false
}

// Every log group of every stack expires its events after logRetentionDays,
// and CDK's Lambda functions log to one of them, not to a group of their own.
func TestEveryLogGroupHasARetention(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		days     float64
	}{{nil, 30}, {customSettings, 7}} {
		a := synth(t, c.settings)
		if n := len(resourcesOf(a.pipeline(), "AWS::Logs::LogGroup")); n < 3 {
			t.Errorf("want at least the access, execution and delivery-error log groups, got %d", n)
		}
		for name, tpl := range a.templates {
			groups := resourcesOf(tpl, "AWS::Logs::LogGroup")
			for id, g := range groups {
				if get(g, "Properties", "RetentionInDays") != c.days {
					t.Errorf("%s: log group %s RetentionInDays = %v, want %v", name, id, get(g, "Properties", "RetentionInDays"), c.days)
				}
			}
			for id, f := range resourcesOf(tpl, "AWS::Lambda::Function") {
				ref, _ := get(f, "Properties", "LoggingConfig", "LogGroup", "Ref").(string)
				if _, ok := groups[ref]; !ok {
					t.Errorf("%s: function %s logs to %v, not a log group with a retention", name, id, get(f, "Properties", "LoggingConfig"))
				}
			}
		}
	}
}

// No statement in any stack grants a wildcard action (the query policy's
// included), the only AWS managed policies are the two whose suppressions
// are pinned above, the one statement on every resource ("*") is the
// producer host's PutMetricData under its app's namespace condition
// (<stackNamePrefix>/<stageName>), and no statement grants log streams by
// a wildcard: the producer writes to its log group's Arn (its streams).
func TestNoWildcardActions(t *testing.T) {
	allowed := map[string]bool{
		"arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs": true,
		"arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore":                      true,
	}
	// By each configuration's stack name prefix and stage.
	namespaces := map[string]string{"Tributary-PROD-": "Tributary/PROD", "Acme-dev-": "Acme/dev"}
	for _, settings := range everySettings {
		a := synth(t, settings)
		metricsCondition := `{"StringEquals":{"cloudwatch:namespace":"` + namespaces[a.settings.StackName("")] + `"}}`
		putMetricData, producerLogs := 0, 0
		for stack, tpl := range a.templates {
			policies := resourcesOf(tpl, "AWS::IAM::Policy")
			for id, p := range resourcesOf(tpl, "AWS::IAM::ManagedPolicy") {
				policies[id] = p
			}
			for id, p := range policies {
				statements := get(p, "Properties", "PolicyDocument", "Statement").([]any)
				// The producer's telemetry policy: PutMetricData, and its log.
				telemetry := strings.Contains(fmt.Sprint(statements), "cloudwatch:PutMetricData")
				for _, st := range statements {
					actions := strs(get(st, "Action"))
					for _, a := range actions {
						if strings.Contains(a, "*") {
							t.Errorf("%s: policy %s allows %s", stack, id, a)
						}
					}
					cond, _ := json.Marshal(get(st, "Condition"))
					if slices.Contains(actions, "cloudwatch:PutMetricData") {
						putMetricData++
						if fmt.Sprint(actions) != "[cloudwatch:PutMetricData]" || string(cond) != metricsCondition {
							t.Errorf("%s: policy %s allows %v with condition %s; want PutMetricData alone, under %s", stack, id, actions, cond, metricsCondition)
						}
					}
					for _, r := range strs(get(st, "Resource")) {
						if r == "*" && !slices.Contains(actions, "cloudwatch:PutMetricData") {
							t.Errorf("%s: policy %s allows %v on every resource", stack, id, actions)
						}
						if strings.Contains(r, "log-stream") {
							t.Errorf("%s: policy %s allows %v on %s", stack, id, actions, r)
						}
						if telemetry && !slices.Contains(actions, "cloudwatch:PutMetricData") {
							producerLogs++
							if fmt.Sprint(actions) != "[logs:CreateLogStream logs:PutLogEvents]" || r != "${HostLogsC0C95A2C.Arn}" {
								t.Errorf("%s: policy %s allows %v on %s; want CreateLogStream and PutLogEvents on the producer's log group", stack, id, actions, r)
							}
						}
					}
					if get(st, "Effect") != "Allow" || get(st, "NotAction") != nil || get(st, "NotResource") != nil {
						t.Errorf("%s: policy %s has an unexpected statement form: %v", stack, id, st)
					}
				}
			}
			for id, r := range resourcesOf(tpl, "AWS::IAM::Role") {
				for _, arn := range strs(get(r, "Properties", "ManagedPolicyArns")) {
					if !allowed[arn] {
						t.Errorf("%s: role %s has managed policy %v", stack, id, arn)
					}
				}
				raw, _ := json.Marshal(get(r, "Properties", "Policies"))
				if strings.Contains(string(raw), `*"`) {
					t.Errorf("%s: role %s has an inline wildcard: %s", stack, id, raw)
				}
			}
		}
		if want := map[bool]int{true: 1, false: 0}[a.stacks.Producer != nil]; putMetricData != want || producerLogs != want {
			t.Errorf("%v: %d statements allow PutMetricData and %d resources the producer's log, want %d each (one with a producer host)",
				settings, putMetricData, producerLogs, want)
		}
	}
}

// No security group of any stack allows inbound traffic, and egress is HTTPS only.
func TestNoOpenIngress(t *testing.T) {
	for _, settings := range everySettings {
		for stack, tpl := range synth(t, settings).templates {
			if n := len(resourcesOf(tpl, "AWS::EC2::SecurityGroupIngress")); n != 0 {
				t.Errorf("%s: %d ingress rules", stack, n)
			}
			for id, sg := range resourcesOf(tpl, "AWS::EC2::SecurityGroup") {
				if in := get(sg, "Properties", "SecurityGroupIngress"); in != nil {
					t.Errorf("%s: security group %s allows inbound %v", stack, id, in)
				}
				for _, e := range get(sg, "Properties", "SecurityGroupEgress").([]any) {
					if get(e, "FromPort") != 443.0 || get(e, "ToPort") != 443.0 || get(e, "IpProtocol") != "tcp" {
						t.Errorf("%s: security group %s allows egress %v", stack, id, e)
					}
				}
			}
		}
	}
}

// A second stage deploys beside the first, and a stage deploys again while
// what its production destroy kept remains: nothing has a fixed physical
// name (the execution log group's name is API Gateway's, made of the API's id).
func TestNoHardCodedPhysicalNames(t *testing.T) {
	named := map[string]string{
		"AWS::S3::Bucket": "BucketName", "AWS::Kinesis::Stream": "Name",
		"AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName", "AWS::Logs::LogGroup": "LogGroupName",
		"AWS::IAM::Role": "RoleName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::KMS::Key": "KeyId",
	}
	for _, settings := range everySettings {
		for stack, tpl := range synth(t, settings).templates {
			for typ, prop := range named {
				for id, r := range resourcesOf(tpl, typ) {
					if name := get(r, "Properties", prop); name != nil && !strings.Contains(joined(name), "${") {
						t.Errorf("%s: %s %s has a fixed %s %v", stack, typ, id, prop, name)
					}
				}
			}
		}
	}
	_, apiA := only(t, synth(t, nil).pipeline(), "AWS::ApiGateway::RestApi")
	_, apiB := only(t, synth(t, customSettings).pipeline(), "AWS::ApiGateway::RestApi")
	if get(apiA, "Properties", "Name") == get(apiB, "Properties", "Name") {
		t.Errorf("two stages share the API name %v", get(apiA, "Properties", "Name"))
	}
}

// The logical ids of the stateful resources are what users have deployed: a
// changed id would make CloudFormation replace the resource (a new, empty
// bucket or stream). A refactor must leave this list as it is.
func TestStatefulLogicalIDsAreStable(t *testing.T) {
	stateful := map[string]bool{"AWS::S3::Bucket": true, "AWS::Kinesis::Stream": true,
		"AWS::KinesisFirehose::DeliveryStream": true, "AWS::KMS::Key": true, "AWS::Logs::LogGroup": true,
		// Named after the stage: a new logical id would create the same name again and fail.
		"AWS::Glue::Database": true, "AWS::Glue::Table": true, "AWS::Athena::WorkGroup": true}
	for _, c := range []struct {
		settings map[string]any
		want     map[string][]string // stack kind -> sorted logical ids
	}{
		{nil, map[string][]string{
			"Pipeline": {"CatalogDatabase44483CA3", "CatalogErrorsTableCBFAA226", "CatalogRawTable1845CD91", "DeliveryDeliveryStream6CF520BD", "DeliveryErrors72580D98",
				"EventsStreamA348795C", "IngestAccessLogs70FDC781", "IngestExecutionLogsD4165E2E", "QueriesResultsB9A74B2C",
				"QueriesWorkGroup8009DE2E", "RawDataAccessLogs8B8DB947", "RawDataBucket46CFA8FB"},
			"Producer":   {"CustomVpcRestrictDefaultSGCustomResourceProviderLogsD60882BB", "HostFlowLogsA4D36B19", "HostLogsC0C95A2C"},
			"Monitoring": nil,
		}},
		{customSettings, map[string][]string{
			"Pipeline": {"CatalogDatabase44483CA3", "CatalogErrorsTableCBFAA226", "CatalogRawTable1845CD91", "CustomS3AutoDeleteObjectsCustomResourceProviderLogs20CB0339",
				"DeliveryDeliveryStream6CF520BD", "DeliveryErrors72580D98", "EventsKey1BC2C457", "EventsStreamA348795C",
				"IngestAccessLogs70FDC781", "IngestExecutionLogsD4165E2E", "QueriesResultsB9A74B2C", "QueriesWorkGroup8009DE2E",
				"RawDataAccessLogs8B8DB947", "RawDataBucket46CFA8FB"},
			"Producer":   {"HostLogsC0C95A2C"},
			"Monitoring": nil,
		}},
		// Hour folders by event_time: another delivery stream (dynamic
		// partitioning cannot be turned on in place), and the typed table.
		{apiKeySettings, map[string][]string{
			"Pipeline": {"CatalogDatabase44483CA3", "CatalogErrorsTableCBFAA226", "CatalogEventsTable8DAE52AA", "CatalogRawTable1845CD91", "DeliveryDeliveryStreamByEventTime080216F1",
				"DeliveryErrors72580D98", "EventsStreamA348795C", "IngestAccessLogs70FDC781", "IngestExecutionLogsD4165E2E",
				"QueriesResultsB9A74B2C", "QueriesWorkGroup8009DE2E", "RawDataAccessLogs8B8DB947", "RawDataBucket46CFA8FB"},
		}},
	} {
		a := synth(t, c.settings)
		for kind, want := range c.want {
			var got []string
			for id, r := range a.templates[a.settings.StackName(kind)]["Resources"].(map[string]any) {
				if stateful[fmt.Sprint(get(r, "Type"))] {
					got = append(got, id)
				}
			}
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%v %s: stateful logical ids\n got %v\nwant %v", c.settings, kind, got, want)
			}
		}
	}
}
