package producerhost_test

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/ingestapi"
	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/producerhost"
	"github.com/tributary/tributary/internal/ingest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func ref[T any](v T) *T { return &v }

// Stack ids as the composition makes them (<prefix>-<stage>-Producer, the
// host's id Host): the default, and one whose launch template name has
// exactly EC2's 128 characters.
const (
	defaultStackID = "Tributary-PROD-Producer"
	longStackID    = "Tributary-analytics-platform-ingest-events-team-a-staging-eu-west-1-blue-green-canary-rollout-2026q4b-Producer"
	hostID         = "Host"
)

// synthesized is one configuration: the host and the real ingest API it
// sends to, in one stack, synthesized into its own cloud assembly.
type synthesized struct {
	stackID string
	// namespace and pipeline are the props': the metrics' namespace and
	// Pipeline dimension.
	namespace, pipeline string
	auth                ingest.Auth
	api                 *ingestapi.IngestAPI
	host                *producerhost.ProducerHost
	stack               awscdk.Stack
	tpl                 assertions.Template
	json                map[string]any
	// annotations are the messages of the same synth (a second, forced
	// synth would run the IMDSv2 aspect again and warn about its own
	// launch template).
	annotations assertions.Annotations
	outdir      string
	// tmpLeft is what building the host (go build included) and
	// synthesizing it left in a TMPDIR of its own, which must be nothing.
	tmpLeft []string
}

// The configurations, each synthesized (and its binary built) once, on first use.
var (
	// Everything by default: t4g.nano (arm64), synthetic events, own VPC, IAM.
	cfgDefault = lazy(defaultStackID, ingest.AuthIAM, producerhost.Props{Namespace: "Tributary/PROD", Pipeline: "Tributary-PROD"})
	// t3.micro (amd64) in an existing VPC, following files, with an API key.
	cfgExisting = lazy(longStackID, ingest.AuthAPIKey, producerhost.Props{
		Namespace: "Acme/staging-eu", Pipeline: "Acme-staging-eu", InstanceType: "t3.micro", Source: "file", Files: []string{"/var/log/app/*.log", "/srv/events/current.ndjson"},
		Rate: ref(2.5), BatchSize: ref(100), VpcID: "vpc-0123456789abcdef0", SubnetID: "subnet-0123456789abcdef0",
	})
	// A burstless arm64 instance type in its own VPC, with a shorter log retention.
	cfgNonBurstable = lazy("Other", ingest.AuthIAM, producerhost.Props{Namespace: "Other/other", Pipeline: "Other-other", InstanceType: "c7g.medium", BatchSize: ref(1), LogRetentionDays: ref(7)})
)

func lazy(stackID string, auth ingest.Auth, props producerhost.Props) func(t *testing.T) *synthesized {
	var s *synthesized
	return func(t *testing.T) *synthesized {
		t.Helper()
		if s == nil {
			s = synth(t, stackID, auth, props)
		}
		return s
	}
}

func synth(t *testing.T, stackID string, auth ingest.Auth, props producerhost.Props) *synthesized {
	t.Helper()
	app := cdktest.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String(stackID), nil)
	stream := awskinesis.NewStream(stack, jsii.String("Events"), nil)
	api := ingestapi.New(stack, "Ingest", &ingestapi.Props{Stream: stream, Auth: auth})
	props.API = api
	s := &synthesized{stackID: stackID, namespace: props.Namespace, pipeline: props.Pipeline, auth: auth, api: api, stack: stack, outdir: *app.Outdir()}

	// The host is built and synthesized with TMPDIR pointing at an empty
	// folder, which must stay empty.
	tmp, err := os.MkdirTemp("", "producerhost-test-tmp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", tmp)
	func() {
		defer func() {
			if had {
				os.Setenv("TMPDIR", old)
			} else {
				os.Unsetenv("TMPDIR")
			}
		}()
		s.host = producerhost.New(stack, hostID, &props)
		s.annotations = assertions.Annotations_FromStack(stack) // synthesizes
		s.tpl = assertions.Template_FromStack(stack, nil)       // the same assembly
	}()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		s.tmpLeft = append(s.tmpLeft, e.Name())
	}
	s.json = cdktest.JSON(s.tpl)
	return s
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

// count is the number of resources of type typ.
func (s *synthesized) count(typ string) int {
	return len(*s.tpl.FindResources(jsii.String(typ), nil))
}

// instance is the host's instance.
func (s *synthesized) instance(t *testing.T) (string, map[string]any) {
	t.Helper()
	return s.one(t, "AWS::EC2::Instance", nil)
}

// role is the logical id of the instance's role, through its instance profile.
func (s *synthesized) role(t *testing.T) string {
	t.Helper()
	_, inst := s.instance(t)
	profileID, _ := get(inst, "IamInstanceProfile", "Ref").(string)
	roles, _ := get(s.resource(t, profileID), "Properties", "Roles").([]any)
	if len(roles) != 1 {
		t.Fatalf("instance profile %s has roles %v, want one", profileID, roles)
	}
	id, _ := get(roles[0], "Ref").(string)
	return id
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

func jsonOf(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// The instance is hardened: the given type, the latest Amazon Linux 2023
// for its architecture, IMDSv2 required (through a launch template), no key
// pair, detailed monitoring, standard CPU credits (no surplus charges), an
// encrypted gp3 root volume deleted with it, the host's security group only.
func TestInstanceIsHardened(t *testing.T) {
	for _, c := range []struct {
		s     *synthesized
		typ   string
		image string
	}{
		{cfgDefault(t), "t4g.nano", "al2023-ami-kernel-6.1-arm64"},
		{cfgExisting(t), "t3.micro", "al2023-ami-kernel-6.1-x86_64"},
	} {
		s := c.s
		_, inst := s.instance(t)
		if inst["InstanceType"] != c.typ || inst["Monitoring"] != true || inst["KeyName"] != nil {
			t.Errorf("%s: type %v, detailed monitoring %v, key pair %v; want %s, true, none", c.typ, inst["InstanceType"], inst["Monitoring"], inst["KeyName"], c.typ)
		}
		if got := jsonOf(inst["CreditSpecification"]); got != `{"CPUCredits":"standard"}` {
			t.Errorf("%s: CreditSpecification = %s, want standard", c.typ, got)
		}
		if got := jsonOf(inst["BlockDeviceMappings"]); got != `[{"DeviceName":"/dev/xvda","Ebs":{"DeleteOnTermination":true,"Encrypted":true,"VolumeSize":8,"VolumeType":"gp3"}}]` {
			t.Errorf("%s: BlockDeviceMappings = %s, want one encrypted 8 GiB gp3 root volume", c.typ, got)
		}
		if inst["PropagateTagsToVolumeOnCreation"] != true {
			t.Errorf("%s: tags not propagated to the volume", c.typ)
		}
		param, _ := get(inst, "ImageId", "Ref").(string)
		if got := get(s.json, "Parameters", param, "Default"); got != "/aws/service/ami-amazon-linux-latest/"+c.image {
			t.Errorf("%s: image from parameter %s = %v, want the latest %s", c.typ, param, got, c.image)
		}
		ltID, lt := s.one(t, "AWS::EC2::LaunchTemplate", nil)
		if got := jsonOf(lt["LaunchTemplateData"]); got != `{"MetadataOptions":{"HttpTokens":"required"}}` {
			t.Errorf("%s: LaunchTemplateData = %s, want IMDSv2 required", c.typ, got)
		}
		if got := jsonOf(inst["LaunchTemplate"]); got != `{"LaunchTemplateName":"`+fmt.Sprint(lt["LaunchTemplateName"])+`","Version":{"Fn::GetAtt":["`+ltID+`","LatestVersionNumber"]}}` {
			t.Errorf("%s: instance LaunchTemplate = %s, want the IMDSv2 template %s", c.typ, got, ltID)
		}
		sgID, _ := s.one(t, "AWS::EC2::SecurityGroup", nil)
		groups := []any{map[string]any{"Fn::GetAtt": []any{sgID, "GroupId"}}}
		if g := get(inst, "NetworkInterfaces", 0, "GroupSet"); g != nil && jsonOf(g) != jsonOf(groups) || g == nil && jsonOf(inst["SecurityGroupIds"]) != jsonOf(groups) {
			t.Errorf("%s: security groups %v %v, want only %s", c.typ, g, inst["SecurityGroupIds"], sgID)
		}
		cdktest.Expect(t, c.typ+": one instance, the disposable host's EC29 suppressed", func() {
			s.tpl.ResourceCountIs(jsii.String("AWS::EC2::Instance"), jsii.Number(1))
			s.tpl.HasResource(jsii.String("AWS::EC2::Instance"), map[string]any{"Metadata": map[string]any{"cdk_nag": map[string]any{
				"rules_to_suppress": []any{assertions.Match_ObjectLike(&map[string]any{"id": "AwsSolutions-EC29"})},
			}}})
		})
		// Nothing warned (the existing subnet's missing route table is acknowledged), nothing failed.
		a := s.annotations
		for level, found := range map[string]int{
			"warnings": len(*a.FindWarning(jsii.String("*"), assertions.Match_AnyValue())),
			"errors":   len(*a.FindError(jsii.String("*"), assertions.Match_AnyValue())),
		} {
			if found != 0 {
				t.Errorf("%s: %d %s", c.typ, found, level)
			}
		}
	}
	// Burstable (t*) instances only have CPU credits to set.
	s := cfgNonBurstable(t)
	cdktest.Expect(t, "c7g.medium: no CreditSpecification", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::EC2::Instance"), map[string]any{
			"InstanceType": "c7g.medium", "CreditSpecification": assertions.Match_Absent(), "Monitoring": true,
		})
	})
}

// No inbound rule at all (Session Manager instead of SSH); outbound only
// HTTPS, for the API, Systems Manager and S3.
func TestNoInboundHTTPSOnlyOutbound(t *testing.T) {
	for _, s := range []*synthesized{cfgDefault(t), cfgExisting(t)} {
		_, sg := s.one(t, "AWS::EC2::SecurityGroup", nil)
		if in := sg["SecurityGroupIngress"]; in != nil {
			t.Errorf("%s: inbound rules %v", s.stackID, in)
		}
		if got := jsonOf(sg["SecurityGroupEgress"]); got != `[{"CidrIp":"0.0.0.0/0","Description":"HTTPS","FromPort":443,"IpProtocol":"tcp","ToPort":443}]` {
			t.Errorf("%s: egress = %s, want only TCP 443", s.stackID, got)
		}
		for _, typ := range []string{"AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"} {
			if n := s.count(typ); n != 0 {
				t.Errorf("%s: %d %s resources, want none", s.stackID, n, typ)
			}
		}
	}
}

// Without a VPC the host gets its own: one public /26 subnet, an internet
// gateway, no NAT gateway (the instance has a public address instead), the
// default security group restricted, and flow logs of all traffic to a log
// group with the retention given (30 days by default), like the logs of the
// restricting function.
func TestOwnVPCWithFlowLogs(t *testing.T) {
	for _, c := range []struct {
		s    *synthesized
		days float64
	}{{cfgDefault(t), 30}, {cfgNonBurstable(t), 7}} {
		s := c.s
		vpcID, vpc := s.one(t, "AWS::EC2::VPC", nil)
		if vpc["CidrBlock"] != "10.42.0.0/24" {
			t.Errorf("%s: VPC CidrBlock %v", s.stackID, vpc["CidrBlock"])
		}
		subnetID, subnet := s.one(t, "AWS::EC2::Subnet", nil)
		if subnet["CidrBlock"] != "10.42.0.0/26" || subnet["MapPublicIpOnLaunch"] != true || jsonOf(subnet["VpcId"]) != `{"Ref":"`+vpcID+`"}` {
			t.Errorf("%s: subnet %v", s.stackID, subnet)
		}
		for typ, want := range map[string]int{
			"AWS::EC2::NatGateway": 0, "AWS::EC2::EIP": 0, "AWS::EC2::InternetGateway": 1, "AWS::EC2::FlowLog": 1,
			"Custom::VpcRestrictDefaultSG": 1,
		} {
			if n := s.count(typ); n != want {
				t.Errorf("%s: %d %s, want %d", s.stackID, n, typ, want)
			}
		}
		_, inst := s.instance(t)
		if got := jsonOf(get(inst, "NetworkInterfaces", 0, "SubnetId")); got != `{"Ref":"`+subnetID+`"}` {
			t.Errorf("%s: instance subnet %s, want %s", s.stackID, got, subnetID)
		}
		if get(inst, "NetworkInterfaces", 0, "AssociatePublicIpAddress") != true {
			t.Errorf("%s: without NAT the host needs a public address", s.stackID)
		}
		_, flow := s.one(t, "AWS::EC2::FlowLog", nil)
		groupID, _ := get(flow, "LogGroupName", "Ref").(string)
		if jsonOf(flow["ResourceId"]) != `{"Ref":"`+vpcID+`"}` || flow["ResourceType"] != "VPC" || flow["TrafficType"] != "ALL" || flow["LogDestinationType"] != "cloud-watch-logs" {
			t.Errorf("%s: flow log %v, want all traffic of the VPC to CloudWatch Logs", s.stackID, flow)
		}
		if got := get(s.resource(t, groupID), "Properties", "RetentionInDays"); got != c.days {
			t.Errorf("%s: flow log group %s RetentionInDays = %v, want %v", s.stackID, groupID, got, c.days)
		}
		fn, _ := s.one(t, "AWS::Lambda::Function", nil)
		logsID, _ := get(s.resource(t, fn), "Properties", "LoggingConfig", "LogGroup", "Ref").(string)
		if got := get(s.resource(t, logsID), "Properties", "RetentionInDays"); got != c.days {
			t.Errorf("%s: restricting function's log group RetentionInDays = %v, want %v", s.stackID, got, c.days)
		}
	}
}

// Given a VPC and subnet, the host creates no network of its own (no VPC,
// flow log, gateway, or the function that restricts a default security
// group) and launches into that subnet, leaving the AZ to it.
func TestExistingVPCAndSubnet(t *testing.T) {
	s := cfgExisting(t)
	for _, typ := range []string{"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::FlowLog", "AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::Lambda::Function", "Custom::VpcRestrictDefaultSG"} {
		if n := s.count(typ); n != 0 {
			t.Errorf("%d %s created beside someone else's VPC", n, typ)
		}
	}
	_, inst := s.instance(t)
	subnet := inst["SubnetId"]
	if subnet == nil {
		subnet = get(inst, "NetworkInterfaces", 0, "SubnetId")
	}
	if subnet != "subnet-0123456789abcdef0" || inst["AvailabilityZone"] != nil {
		t.Errorf("subnet %v, AZ %v: want the given subnet, the AZ left to it", subnet, inst["AvailabilityZone"])
	}
	if get(inst, "NetworkInterfaces", 0, "AssociatePublicIpAddress") != nil {
		t.Errorf("the host asks for a public address in someone else's subnet: %v", inst["NetworkInterfaces"])
	}
	_, sg := s.one(t, "AWS::EC2::SecurityGroup", nil)
	if sg["VpcId"] != "vpc-0123456789abcdef0" {
		t.Errorf("security group VpcId = %v", sg["VpcId"])
	}
	if s.host.Vpc != nil || s.host.FlowLogs != nil {
		t.Error("Vpc and FlowLogs are set for an existing VPC")
	}
	if d := cfgDefault(t); d.host.Vpc == nil || d.host.FlowLogs == nil {
		t.Error("Vpc and FlowLogs are nil for the host's own VPC")
	}
}

// The host's role may invoke the API's two POST methods, read its own
// binary (and, with an API key, that key), publish metrics in its
// pipeline's namespace only (the one condition: PutMetricData takes no
// resource but *), write its log in its own log group only, and use Session
// Manager: nothing else, on nothing else. Only EC2 may assume it.
func TestRoleIsLeastPrivilege(t *testing.T) {
	for _, s := range []*synthesized{cfgDefault(t), cfgExisting(t)} {
		roleID := s.role(t)
		role := s.resource(t, roleID)
		p := role["Properties"].(map[string]any)
		if got := jsonOf(get(p, "AssumeRolePolicyDocument", "Statement")); got != `[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"}}]` {
			t.Errorf("%s: trust = %s, want EC2 only", s.stackID, got)
		}
		managed, _ := p["ManagedPolicyArns"].([]any)
		if len(managed) != 1 || cdktest.Joined(managed[0]) != "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore" || p["Policies"] != nil {
			t.Errorf("%s: managed policies %v, inline %v; want AmazonSSMManagedInstanceCore only", s.stackID, managed, p["Policies"])
		}
		if got := jsonOf(get(role, "Metadata", "cdk_nag", "rules_to_suppress")); !strings.Contains(got, `"applies_to":["Policy::arn:\u003cAWS::Partition\u003e:iam::aws:policy/AmazonSSMManagedInstanceCore"],"id":"AwsSolutions-IAM4"`) {
			t.Errorf("%s: IAM4 suppression %s, want it for AmazonSSMManagedInstanceCore only", s.stackID, got)
		}
		// The log group's Arn attribute: the group and its streams.
		logsARN := "${" + nag.LogicalID(s.host.Logs) + ".Arn}"
		// The IAM5 suppression is on the role's policy, for PutMetricData's *, naming the condition.
		telemetry := nag.LogicalID(s.host.Telemetry)
		var iam5 []cdktest.Suppression
		for _, sup := range cdktest.Suppressions(s.tpl) {
			if sup.Rule == "AwsSolutions-IAM5" {
				iam5 = append(iam5, sup)
			}
		}
		if len(iam5) != 1 || iam5[0].Resource != telemetry ||
			fmt.Sprint(iam5[0].AppliesTo) != "[Resource::*]" ||
			!strings.Contains(iam5[0].Reason, "StringEquals cloudwatch:namespace = "+s.namespace+" confines") ||
			strings.Contains(iam5[0].Reason, "log") {
			t.Errorf("%s: IAM5 suppressions %v, want one on the telemetry policy %s for * alone, naming the namespace condition", s.stackID, iam5, telemetry)
		}

		apiID, _ := s.one(t, "AWS::ApiGateway::RestApi", nil)
		stageID, _ := s.one(t, "AWS::ApiGateway::Stage", nil)
		invoke := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${" + apiID + "}/${" + stageID + "}/POST"
		want := []string{
			"execute-api:Invoke on " + invoke + "/v1",
			"execute-api:Invoke on " + invoke + "/v1/batch",
			"s3:GetObject on arn:${AWS::Partition}:s3:::cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/" + s.binary(t).objectKey,
			`cloudwatch:PutMetricData on * if {"StringEquals":{"cloudwatch:namespace":"` + s.namespace + `"}}`,
			"logs:CreateLogStream,logs:PutLogEvents on " + logsARN,
		}
		if s.auth == ingest.AuthAPIKey {
			keyID, _ := s.one(t, "AWS::ApiGateway::ApiKey", nil)
			want = append(want, "apigateway:GET on arn:${AWS::Partition}:apigateway:${AWS::Region}::/apikeys/${"+keyID+"}")
		}
		sort.Strings(want)
		var got []string
		for _, st := range cdktest.Statements(t, s.tpl, roleID) {
			if st["Effect"] != "Allow" || st["NotAction"] != nil || st["NotResource"] != nil {
				t.Errorf("%s: statement %v", s.stackID, st)
			}
			resources, ok := st["Resource"].([]any)
			if !ok {
				resources = []any{st["Resource"]}
			}
			actions := strings.Join(cdktest.Actions([]map[string]any{st}), ",")
			cond := ""
			if st["Condition"] != nil {
				cond = " if " + jsonOf(st["Condition"])
			}
			for _, r := range resources {
				res := cdktest.Joined(r)
				// The only wildcard: PutMetricData's resource, under its condition.
				if strings.Contains(actions+res, "*") && !(res == "*" && actions == "cloudwatch:PutMetricData" && cond != "") {
					t.Errorf("%s: wildcard %s on %s%s", s.stackID, actions, res, cond)
				}
				got = append(got, actions+" on "+res+cond)
			}
		}
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: grants\n %s\nwant\n %s", s.stackID, strings.Join(got, "\n "), strings.Join(want, "\n "))
		}
	}
}

// The producer's log group is named by CloudFormation (a production
// destroy keeps it, and a fixed name would fail the stage's next
// deployment), keeps its logical id, expires with LogRetentionDays and, as
// every log group of the stack, is encrypted by CloudWatch Logs itself (no
// KMS key): its properties are the retention alone.
func TestProducerLogGroup(t *testing.T) {
	for _, c := range []struct {
		s    *synthesized
		days float64
	}{{cfgDefault(t), 30}, {cfgExisting(t), 30}, {cfgNonBurstable(t), 7}} {
		id := nag.LogicalID(c.s.host.Logs)
		if id != "HostLogsC0C95A2C" {
			t.Errorf("%s: the producer's log group is %s, want HostLogsC0C95A2C", c.s.stackID, id)
		}
		if got, want := jsonOf(get(c.s.resource(t, id), "Properties")), fmt.Sprintf(`{"RetentionInDays":%v}`, c.days); got != want {
			t.Errorf("%s: log group %s has properties %s, want %s", c.s.stackID, id, got, want)
		}
		if c.s.host.Namespace != c.s.namespace || c.s.host.Pipeline != c.s.pipeline {
			t.Errorf("%s: host exposes namespace %q, pipeline %q; want %q, %q", c.s.stackID, c.s.host.Namespace, c.s.host.Pipeline, c.s.namespace, c.s.pipeline)
		}
	}
}
