package test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tributary/tributary/constructs/tributary"
	"github.com/tributary/tributary/internal/ingest"
)

// Each stack's name, and construct id (so `cdk deploy <name>` selects it), is
// <prefix>-<stage>-<kind>; producerHost=false leaves the host's stack out.
func TestStackNamesFollowPrefixAndStage(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		want     []string
	}{
		{nil, []string{"Tributary-PROD-Pipeline", "Tributary-PROD-Producer", "Tributary-PROD-Monitoring"}},
		{customSettings, []string{"Acme-dev-Pipeline", "Acme-dev-Producer", "Acme-dev-Monitoring"}},
		{openSettings, []string{"Tributary-PROD-Pipeline", "", "Tributary-PROD-Monitoring"}},
	} {
		a := synth(t, c.settings)
		got := []string{*a.stacks.Pipeline.StackName(), "", *a.stacks.Monitoring.StackName()}
		ids := []string{*a.stacks.Pipeline.Node().Id(), "", *a.stacks.Monitoring.Node().Id()}
		if a.stacks.Producer != nil {
			got[1], ids[1] = *a.stacks.Producer.StackName(), *a.stacks.Producer.Node().Id()
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) || fmt.Sprint(ids) != fmt.Sprint(c.want) {
			t.Errorf("%v: stacks %v with ids %v, want %v", c.settings, got, ids, c.want)
		}
		if len(a.templates) != len(strings.Fields(strings.Join(c.want, " "))) {
			t.Errorf("%v: %d templates, want %v", c.settings, len(a.templates), c.want)
		}
	}
}

// The pipeline stack publishes exactly what producers and users need.
func TestPipelineStackOutputs(t *testing.T) {
	tpl := synth(t, nil).pipeline()
	streamID, _ := only(t, tpl, "AWS::Kinesis::Stream")
	dsID, _ := only(t, tpl, "AWS::KinesisFirehose::DeliveryStream")
	apiID, _ := only(t, tpl, "AWS::ApiGateway::RestApi")
	stageID, _ := only(t, tpl, "AWS::ApiGateway::Stage")
	dbID, db := only(t, tpl, "AWS::Glue::Database")
	var rawID string
	for id, table := range resourcesOf(tpl, "AWS::Glue::Table") {
		if get(table, "Properties", "TableInput", "Name") == "events_raw" {
			rawID = id
		}
	}
	wgID, _ := only(t, tpl, "AWS::Athena::WorkGroup")
	policyID, _ := only(t, tpl, "AWS::IAM::ManagedPolicy")
	var bucketID, resultsID string
	for id, r := range resourcesOf(tpl, "AWS::S3::Bucket") {
		if get(r, "Properties", "VersioningConfiguration") != nil {
			bucketID = id
		}
		if strings.Contains(fmt.Sprint(get(r, "Properties", "LoggingConfiguration")), "query-results-bucket/") {
			resultsID = id
		}
	}
	if get(db, "Properties", "DatabaseInput", "Name") != "tributary_prod" {
		t.Errorf("Glue database %v, want tributary_prod (prefix and stage)", get(db, "Properties", "DatabaseInput", "Name"))
	}
	url := "https://${" + apiID + "}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${" + stageID + "}/v1"
	outputs := tpl["Outputs"].(map[string]any)
	want := map[string]string{
		"IngestUrl":          url,
		"IngestBatchUrl":     url + "/batch",
		"StreamName":         "${" + streamID + "}",
		"DeliveryStreamName": "${" + dsID + "}",
		"BucketName":         "${" + bucketID + "}",
		"DataPrefix":         "raw-data/",
		"GlueDatabase":       "${" + dbID + "}",
		"RawTable":           "${" + rawID + "}",
		"AthenaWorkGroup":    "${" + wgID + "}",
		"QueryResultsBucket": "${" + resultsID + "}",
		"QueryPolicyArn":     "${" + policyID + "}",
		"AthenaConsoleUrl":   "https://${AWS::Region}.console.aws.amazon.com/athena/home?region=${AWS::Region}#/query-editor",
	}
	for name, value := range want {
		if got := joined(get(outputs, name, "Value")); got != value {
			t.Errorf("output %s = %s, want %s", name, got, value)
		}
	}
	if d := get(outputs, "QueryPolicyArn", "Description"); !strings.HasPrefix(fmt.Sprint(d), "Managed policy to attach to the users and roles that query") {
		t.Errorf("QueryPolicyArn's description: %v", d)
	}
	example := joined(get(outputs, "ExampleRequest", "Value"))
	for _, part := range []string{
		`curl -sS --fail-with-body --aws-sigv4 "aws:amz:${AWS::Region}:execute-api"`,
		`--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"`,
		`-H "Content-Type: application/json"`,
		`-d '{"value":"30","type":"Tip 3"}' ` + url,
	} {
		if !strings.Contains(example, part) {
			t.Errorf("example request lacks %q:\n%s", part, example)
		}
	}
	ours := 0
	for name := range outputs {
		if !strings.HasPrefix(name, "PublishOutputRef") { // CDK's, for the other stacks' references
			ours++
		}
	}
	if ours != len(want)+1 {
		t.Errorf("want exactly %d outputs, got %d: %v", len(want)+1, ours, outputs)
	}

	typed := synth(t, apiKeySettings).pipeline()
	for name, want := range map[string]string{"RawTable": "events_raw", "EventsTable": "events"} {
		id := ""
		for tid, r := range resourcesOf(typed, "AWS::Glue::Table") {
			if get(r, "Properties", "TableInput", "Name") == want {
				id = tid
			}
		}
		if got := joined(get(typed, "Outputs", name, "Value")); got != "${"+id+"}" {
			t.Errorf("with a schema, output %s = %s, want the table %s", name, got, want)
		}
	}
	if get(synth(t, openSettings).pipeline(), "Outputs", "RawTable") != nil { // Parquet
		t.Error("with Parquet, the output RawTable names a table that cannot read the objects")
	}

	keyed := synth(t, apiKeySettings).pipeline()
	keyID, _ := only(t, keyed, "AWS::ApiGateway::ApiKey")
	if got := joined(get(keyed, "Outputs", "ApiKeyId", "Value")); got != "${"+keyID+"}" {
		t.Errorf("ApiKeyId = %s, want the key", got)
	}
	if ex := joined(get(keyed, "Outputs", "ExampleRequest", "Value")); !strings.Contains(ex, `-H "x-api-key: $(aws apigateway get-api-key --include-value --query value --output text --api-key ${`+keyID+`})"`) {
		t.Errorf("API_KEY example request does not send the key: %s", ex)
	}
	if ex := joined(get(synth(t, openSettings).pipeline(), "Outputs", "ExampleRequest", "Value")); strings.Contains(ex, "sigv4") || strings.Contains(ex, "x-api-key") {
		t.Errorf("NONE example request authenticates: %s", ex)
	}
}

// The producer host is wired to this pipeline's API across stacks: it may
// invoke exactly its two methods and runs against its /v1 URL.
func TestProducerStackUsesThePipelinesAPI(t *testing.T) {
	a := synth(t, nil)
	producer := a.templates["Tributary-PROD-Producer"]
	var invoke []string
	for _, p := range resourcesOf(producer, "AWS::IAM::Policy") {
		for _, st := range get(p, "Properties", "PolicyDocument", "Statement").([]any) {
			if fmt.Sprint(get(st, "Action")) == "execute-api:Invoke" {
				invoke = append(invoke, strs(get(st, "Resource"))...)
			}
		}
	}
	ref := func(output string) string {
		return "${Fn::GetStackOutput:Tributary-PROD-Pipeline/PublishOutputRef" + output
	}
	if len(invoke) != 2 {
		t.Fatalf("execute-api:Invoke on %v, want the two methods", invoke)
	}
	for i, path := range []string{"/POST/v1", "/POST/v1/batch"} {
		if !strings.HasPrefix(invoke[i], "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"+ref("IngestApi")) ||
			!strings.Contains(invoke[i], ref("IngestApiDeploymentStagePROD")) || !strings.HasSuffix(invoke[i], path) {
			t.Errorf("invoke resource %d = %s, want this pipeline's API, stage and %s", i, invoke[i], path)
		}
	}
	_, instance := only(t, producer, "AWS::EC2::Instance")
	userData := joined(get(instance, "Properties", "UserData", "Fn::Base64"))
	if !strings.Contains(userData, "TRIBUTARY_URL=https://"+ref("IngestApi")) || !strings.Contains(userData, "/v1\n") {
		t.Errorf("the host does not send to this pipeline's /v1 URL:\n%s", userData)
	}
	// The producer publishes where the role may and the alarms look, and
	// ships its log to the log group LogsCommand tails, which CloudFormation
	// names (a production destroy keeps it).
	const logsID = "HostLogsC0C95A2C"
	if g, ok := resourcesOf(producer, "AWS::Logs::LogGroup")[logsID]; !ok || get(g, "Properties", "LogGroupName") != nil {
		t.Errorf("the producer's log group %s: %v, want one without a LogGroupName", logsID, g)
	}
	for _, want := range []string{"TRIBUTARY_CLOUDWATCH_NAMESPACE=Tributary/PROD\n", "TRIBUTARY_CLOUDWATCH_LOG_GROUP=${" + logsID + "}\n",
		"TRIBUTARY_PIPELINE=Tributary-PROD\n", `echo "TRIBUTARY_HOST=$instance_id" >> /etc/tributary-producer.env`} {
		if !strings.Contains(userData, want) {
			t.Errorf("host user data lacks %q", want)
		}
	}
	// The commands run as printed: the host's id, the stack's Region; the
	// log is read from CloudWatch Logs, where the producer ships it.
	instanceID, _ := only(t, producer, "AWS::EC2::Instance")
	for name, want := range map[string]string{
		"InstanceId":     "${" + instanceID + "}",
		"SessionCommand": "aws ssm start-session --target ${" + instanceID + "} --region ${AWS::Region}",
		"LogsCommand":    "aws logs tail ${" + logsID + "} --follow --region ${AWS::Region}",
	} {
		if got := joined(get(producer, "Outputs", name, "Value")); got != want {
			t.Errorf("producer stack output %s = %s, want %s", name, got, want)
		}
	}
}

// The monitoring stack watches this pipeline's stage, stream and delivery
// stream, the data bucket's request metrics filter over the error prefix
// (which the pipeline stack creates, the error prefix in force, custom
// too), and the host when there is one; its dashboard is named after the
// pipeline stack.
func TestMonitoringStackWatchesThePipeline(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		host     bool
		// producer is the namespace and Pipeline dimension of the
		// producer's alarms: <prefix>/<stage> and <prefix>-<stage>.
		producer string
	}{{nil, true, "Tributary/PROD Pipeline=Tributary-PROD"}, {openSettings, false, ""}, {customSettings, true, "Acme/dev Pipeline=Acme-dev"}} {
		a := synth(t, c.settings)
		mon := a.templates[a.settings.StackName("Monitoring")]
		for id, r := range resourcesOf(a.pipeline(), "AWS::S3::Bucket") {
			metrics := get(r, "Properties", "MetricsConfigurations")
			if get(r, "Properties", "VersioningConfiguration") == nil { // not the data bucket
				if metrics != nil {
					t.Errorf("%v: bucket %s has request metrics %v", c.settings, id, metrics)
				}
				continue
			}
			if want := fmt.Sprintf("[map[Id:errors Prefix:%s]]", a.settings.Pipeline.Delivery.ErrorPrefixInForce()); fmt.Sprint(metrics) != want {
				t.Errorf("%v: data bucket's request metrics %v, want %s", c.settings, metrics, want)
			}
		}
		dims := alarmDimensions(mon)
		hostRef := "${Fn::GetStackOutput:" + a.settings.StackName("Producer") + "/PublishOutputRefHostInstance"
		// The producer's alarms: this app's namespace and pipeline, and this host (the instance).
		for _, name := range []string{"ProducerHeartbeat", "ProducerDeadLettered", "ProducerOldestUnconfirmed", "ProducerFileLag"} {
			got := dims[name+" namespace"] + " Pipeline=" + dims[name+" Pipeline"] + " Host=" + dims[name+" Host"]
			if !c.host {
				if dims[name+" namespace"] != "" {
					t.Errorf("%v: without a host, alarm %s on %s", c.settings, name, got)
				}
				continue
			}
			if want := c.producer + " Host=" + hostRef; !strings.HasPrefix(got, want) {
				t.Errorf("%v: alarm %s watches %s, want %s...", c.settings, name, got, want)
			}
		}
		if c.settings["stageName"] == "dev" { // customSettings: only the error prefix and the producer are of interest here
			continue
		}
		pipelineRef := "${Fn::GetStackOutput:Tributary-PROD-Pipeline/PublishOutputRef"
		for k, want := range map[string]string{
			"Api5xx Stage":                              pipelineRef + "IngestApiDeploymentStagePROD",
			"Api5xx ApiName":                            "Tributary-PROD-Pipeline-ingest",
			"WriteThrottled StreamName":                 pipelineRef + "EventsStream",
			"IteratorAge StreamName":                    pipelineRef + "EventsStream",
			"DataFreshness DeliveryStreamName":          pipelineRef + "DeliveryDeliveryStream",
			"DeliveryFailure DeliveryStreamName":        pipelineRef + "DeliveryDeliveryStream",
			"ErrorObjects BucketName":                   pipelineRef + "RawDataBucket",
			"ErrorObjects FilterId":                     "errors",
			"HostStatusCheck InstanceId (only w/ host)": hostRef,
		} {
			key, hostOnly := strings.CutSuffix(k, " (only w/ host)")
			got, ok := dims[key]
			if hostOnly && !c.host {
				if ok {
					t.Errorf("%v: without a host, alarm dimension %s = %s", c.settings, key, got)
				}
				continue
			}
			if !strings.HasPrefix(got, want) {
				t.Errorf("%v: alarm dimension %s = %q, want %s...", c.settings, key, got, want)
			}
		}
		_, dash := only(t, mon, "AWS::CloudWatch::Dashboard")
		if get(dash, "Properties", "DashboardName") != "Tributary-PROD-Pipeline" {
			t.Errorf("dashboard name = %v, want the pipeline stack's", get(dash, "Properties", "DashboardName"))
		}
	}
}

// A production stage keeps its data when the stack is deleted; a development
// stage (the README's trial stage too) deletes everything, log groups of
// every stack included, emptying the buckets first.
func TestProductionRetainsDataDevelopmentRemovesIt(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		policy   string
		emptiers int
	}{{nil, "Retain", 0}, {customSettings, "Delete", 3}, {map[string]any{"stageName": tributary.TrialStageName}, "Delete", 3}} {
		a := synth(t, c.settings)
		for name, tpl := range a.templates {
			for _, typ := range []string{"AWS::S3::Bucket", "AWS::Kinesis::Stream", "AWS::KMS::Key", "AWS::Logs::LogGroup"} {
				for id, r := range resourcesOf(tpl, typ) {
					want := c.policy
					if typ == "AWS::Logs::LogGroup" && strings.HasPrefix(id, "Custom") {
						want = "Delete" // CDK's custom-resource logs: nothing to keep
					}
					if r["DeletionPolicy"] != want {
						t.Errorf("%s: %s %s DeletionPolicy = %v, want %s", name, typ, id, r["DeletionPolicy"], want)
					}
				}
			}
		}
		emptiers := resourcesOf(a.pipeline(), "Custom::S3AutoDeleteObjects")
		if len(emptiers) != c.emptiers {
			t.Errorf("%v: %d bucket-emptying resources, want %d", c.settings, len(emptiers), c.emptiers)
		}
		for id, e := range emptiers {
			bucket, _ := get(e, "Properties", "BucketName", "Ref").(string)
			if _, ok := resourcesOf(a.pipeline(), "AWS::S3::Bucket")[bucket]; !ok {
				t.Errorf("emptier %s empties %v, not a bucket of this stack", id, bucket)
			}
		}
	}
}

// Every setting reaches the resource it configures (customSettings changes
// them all): the settings table says where each goes, this proves it lands.
func TestSettingsReachTheirResources(t *testing.T) {
	a := synth(t, customSettings)
	pipeline, producer, mon := a.pipeline(), a.templates["Acme-dev-Producer"], a.templates["Acme-dev-Monitoring"]
	prop := func(tpl map[string]any, typ string, path ...any) string {
		_, r := only(t, tpl, typ)
		return joined(get(r, append([]any{"Properties"}, path...)...))
	}
	for _, c := range []struct{ setting, got, want string }{
		{"stageName", prop(pipeline, "AWS::ApiGateway::Stage", "StageName"), "dev"},
		{"streamMode", prop(pipeline, "AWS::Kinesis::Stream", "StreamModeDetails", "StreamMode"), "ON_DEMAND"},
		{"retentionHours", prop(pipeline, "AWS::Kinesis::Stream", "RetentionPeriodHours"), "168"},
		{"streamEncryption", prop(pipeline, "AWS::Kinesis::Stream", "StreamEncryption", "KeyId"), "${EventsKey1BC2C457.Arn}"},
		{"dataPrefix", prop(pipeline, "AWS::KinesisFirehose::DeliveryStream", "ExtendedS3DestinationConfiguration", "Prefix"), "events/json/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"},
		{"errorPrefix", prop(pipeline, "AWS::KinesisFirehose::DeliveryStream", "ExtendedS3DestinationConfiguration", "ErrorOutputPrefix"), "failed/!{firehose:error-output-type}/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"},
		{"bufferingSeconds", prop(pipeline, "AWS::KinesisFirehose::DeliveryStream", "ExtendedS3DestinationConfiguration", "BufferingHints", "IntervalInSeconds"), "300"},
		{"bufferingMiB", prop(pipeline, "AWS::KinesisFirehose::DeliveryStream", "ExtendedS3DestinationConfiguration", "BufferingHints", "SizeInMBs"), "64"},
		{"compression", prop(pipeline, "AWS::KinesisFirehose::DeliveryStream", "ExtendedS3DestinationConfiguration", "CompressionFormat"), "GZIP"},
		{"apiThrottleRate (derived: ON_DEMAND)", prop(pipeline, "AWS::ApiGateway::Stage", "MethodSettings", 0, "ThrottlingRateLimit"), "4000"},
		{"producerInstanceType", prop(producer, "AWS::EC2::Instance", "InstanceType"), "t3.micro"},
		{"producerSubnetId", prop(producer, "AWS::EC2::Instance", "SubnetId"), "subnet-0123456789abcdef0"},
		{"producerVpcId", prop(producer, "AWS::EC2::SecurityGroup", "VpcId"), "vpc-0123456789abcdef0"},
		{"alarmEmail", prop(mon, "AWS::SNS::Subscription", "Endpoint"), "ops@example.com"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.setting, c.got, c.want)
		}
	}
	lifecycle := ""
	for _, r := range resourcesOf(pipeline, "AWS::S3::Bucket") {
		lifecycle += joined(get(r, "Properties", "LifecycleConfiguration"))
	}
	for _, want := range []string{`"StorageClass":"STANDARD_IA","TransitionInDays":30`, `"StorageClass":"GLACIER_IR","TransitionInDays":90`,
		`"ExpirationInDays":400`, `"ExpirationInDays":7`} { // expiry of data; of access logs (logRetentionDays)
		if !strings.Contains(lifecycle, want) {
			t.Errorf("bucket lifecycle lacks %s: %s", want, lifecycle)
		}
	}
	_, instance := only(t, producer, "AWS::EC2::Instance")
	userData := joined(get(instance, "Properties", "UserData", "Fn::Base64"))
	for _, want := range []string{"TRIBUTARY_SOURCE=file", "TRIBUTARY_FILES=/var/log/app/events.log,/var/log/app/more.log",
		"TRIBUTARY_RATE=5\n", "TRIBUTARY_BATCH_SIZE=100\n", "TRIBUTARY_PIPELINE=Acme-dev\n", "TRIBUTARY_CLOUDWATCH_NAMESPACE=Acme/dev\n"} {
		if !strings.Contains(userData, want) {
			t.Errorf("host user data lacks %q", want)
		}
	}
	if n := len(resourcesOf(pipeline, "AWS::ApiGateway::Account")); n != 0 {
		t.Errorf("apiCloudWatchRole=EXISTING still sets the account's role (%d)", n)
	}
	thresholds := map[string]string{}
	for id, alarm := range resourcesOf(mon, "AWS::CloudWatch::Alarm") {
		thresholds[alarmName(id)] = joined(get(alarm, "Properties", "Threshold"))
	}
	want := map[string]string{"Api5xx": "10", "WriteThrottled": "50", "IteratorAge": "1800000", "DataFreshness": "900", "DeliveryFailure": "0.99",
		"ErrorObjects": "1", "HostStatusCheck": "1", // any error object alarms
		"ProducerDeadLettered": "20", "ProducerOldestUnconfirmed": "1200", "ProducerHeartbeat": "1", "ProducerFileLag": "0"}
	if fmt.Sprint(thresholds) != fmt.Sprint(want) {
		t.Errorf("alarm thresholds %v, want %v", thresholds, want)
	}
}

// In every configuration the query policy reads and lists the data bucket
// under exactly the folders its Glue tables read (the layout's folder under
// the data prefix, and the error prefix), each named here, not derived: a
// table the policy did not cover would fail with Access Denied, a folder no
// table reads would be granted for nothing.
func TestQueryPolicyCoversExactlyTheTables(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{
		{nil, "errors/ raw-data/"},
		{customSettings, "events/json/ failed/"},
		{apiKeySettings, "errors/ raw-data/by-event-time/"},
		{openSettings, "errors/ raw-data/parquet-by-event-time/"},
	} {
		tpl := synth(t, c.settings).pipeline()
		var data string // the data bucket is the versioned one
		for id, r := range resourcesOf(tpl, "AWS::S3::Bucket") {
			if get(r, "Properties", "VersioningConfiguration") != nil {
				data = id
			}
		}
		set := func(prefixes []string) string {
			sort.Strings(prefixes)
			return strings.Join(slices.Compact(prefixes), " ")
		}
		var tables []string
		for _, r := range resourcesOf(tpl, "AWS::Glue::Table") {
			loc := joined(get(r, "Properties", "TableInput", "StorageDescriptor", "Location"))
			prefix, ok := strings.CutPrefix(loc, "s3://${"+data+"}/")
			if !ok {
				t.Errorf("%v: a table reads %s, not the data bucket", c.settings, loc)
			}
			tables = append(tables, prefix)
		}
		if got := set(tables); got != c.want {
			t.Errorf("%v: the tables read %s, want %s", c.settings, got, c.want)
		}
		_, policy := only(t, tpl, "AWS::IAM::ManagedPolicy")
		var objects, listed []string
		for _, st := range get(policy, "Properties", "PolicyDocument", "Statement").([]any) {
			switch get(st, "Action") {
			case "s3:GetObject":
				for _, r := range get(st, "Resource").([]any) {
					if p, ok := strings.CutPrefix(joined(r), "${"+data+".Arn}/"); ok {
						objects = append(objects, strings.TrimSuffix(p, "*"))
					}
				}
			case "s3:ListBucket":
				if joined(get(st, "Resource")) == "${"+data+".Arn}" {
					for _, p := range get(st, "Condition", "StringLike", "s3:prefix").([]any) {
						listed = append(listed, strings.TrimSuffix(p.(string), "*"))
					}
				}
			}
		}
		if got := set(objects); got != c.want {
			t.Errorf("%v: the policy reads objects under %s, want %s", c.settings, got, c.want)
		}
		if got := set(listed); got != c.want {
			t.Errorf("%v: the policy lists the data bucket under %s, want %s", c.settings, got, c.want)
		}
	}
}

// alarmDimensions are the monitoring stack's alarms' dimensions, "<alarm>
// <name>" to their value, and namespaces, "<alarm> namespace"; a metric math
// alarm's are its metric's.
func alarmDimensions(mon map[string]any) map[string]string {
	dims := map[string]string{}
	for id, alarm := range resourcesOf(mon, "AWS::CloudWatch::Alarm") {
		ds, _ := get(alarm, "Properties", "Dimensions").([]any)
		ns := get(alarm, "Properties", "Namespace")
		for _, m := range strsOrNil(get(alarm, "Properties", "Metrics")) {
			if stat := get(m, "MetricStat", "Metric"); stat != nil {
				ds, ns = get(stat, "Dimensions").([]any), get(stat, "Namespace")
			}
		}
		for _, d := range ds {
			dims[alarmName(id)+" "+get(d, "Name").(string)] = joined(get(d, "Value"))
		}
		dims[alarmName(id)+" namespace"] = fmt.Sprint(ns)
	}
	return dims
}

// alarmName is an alarm's name in the monitoring construct, from its
// logical id: Monitoring<name><8-character hash>.
func alarmName(logicalID string) string {
	return strings.TrimPrefix(logicalID, "Monitoring")[:len(logicalID)-len("Monitoring")-8]
}

// strsOrNil is a template list, or nil when v is none.
func strsOrNil(v any) []any {
	l, _ := v.([]any)
	return l
}

// A batch carries 1,000 events where nothing downstream counts records (a
// packed record of JSON by arrival time: the batch template's loop takes
// 1,000), and 500 where something does (PutRecords with PER_EVENT; Firehose
// de-aggregating a packed record by event time or for Parquet). The request
// model, the 400 answer, the IngestBatchUrl output and the host's batch size
// all say the same.
func TestBatchLimitFollowsWhatCountsRecords(t *testing.T) {
	for _, c := range []struct {
		name      string
		settings  map[string]any
		max       int
		hostBatch string // "" without a host
	}{
		{"default (PACKED, ARRIVAL_TIME, JSON)", nil, ingest.MaxPackedBatch, "1000"},
		{"custom (PACKED, ARRIVAL_TIME, JSON, batch 100)", customSettings, ingest.MaxPackedBatch, "100"},
		{"PER_EVENT", apiKeySettings, ingest.MaxBatch, "500"},
		{"PACKED by EVENT_TIME as PARQUET", openSettings, ingest.MaxBatch, ""},
	} {
		a := synth(t, c.settings)
		tpl := a.pipeline()
		var batchModel any
		for _, m := range resourcesOf(tpl, "AWS::ApiGateway::Model") {
			if get(m, "Properties", "Schema", "title") == "Batch" {
				batchModel = get(m, "Properties", "Schema")
			}
		}
		if got := get(batchModel, "maxItems"); got != float64(c.max) {
			t.Errorf("%s: the batch model's maxItems = %v, want %d", c.name, got, c.max)
		}
		if got, want := get(batchModel, "description"), fmt.Sprintf("1 to %d events, ", c.max); !strings.HasPrefix(fmt.Sprint(got), want) {
			t.Errorf("%s: the batch model's description = %v, want it to start %q", c.name, got, want)
		}
		if got, want := get(tpl, "Outputs", "IngestBatchUrl", "Description"), fmt.Sprintf("POST a JSON array of 1 to %d events here", c.max); got != want {
			t.Errorf("%s: IngestBatchUrl description = %v, want %q", c.name, got, want)
		}
		var badBody string
		for _, r := range resourcesOf(tpl, "AWS::ApiGateway::GatewayResponse") {
			if get(r, "Properties", "ResponseType") == "BAD_REQUEST_BODY" {
				badBody = fmt.Sprint(get(r, "Properties", "ResponseTemplates", "application/json"))
			}
		}
		if want := fmt.Sprintf("/v1/batch an array of 1 to %d JSON objects", c.max); !strings.Contains(badBody, want) {
			t.Errorf("%s: the 400 answer %s does not say %q", c.name, badBody, want)
		}
		if c.hostBatch == "" {
			continue
		}
		_, instance := only(t, a.templates[*a.stacks.Producer.StackName()], "AWS::EC2::Instance")
		if userData := joined(get(instance, "Properties", "UserData", "Fn::Base64")); !strings.Contains(userData, "TRIBUTARY_BATCH_SIZE="+c.hostBatch+"\n") {
			t.Errorf("%s: the host's batch size is not %s:\n%s", c.name, c.hostBatch, userData)
		}
	}
}
