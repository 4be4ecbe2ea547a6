package test

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// host returns the producer stack's template and its single instance.
func (s *synthesized) host(t *testing.T) (map[string]any, map[string]any) {
	t.Helper()
	if s.producer == nil {
		t.Fatal("no producer stack")
	}
	instances := resourcesOf(s.producer.json, "AWS::EC2::Instance")
	if len(instances) != 1 {
		t.Fatalf("want one instance, got %d", len(instances))
	}
	for _, i := range instances {
		return s.producer.json, i
	}
	return nil, nil
}

func userData(instance map[string]any) string {
	return joined(get(instance, "Properties", "UserData", "Fn::Base64"))
}

func TestProducerHostIsHardened(t *testing.T) {
	s := synth(t, nil)
	tpl, inst := s.host(t)
	p := props(inst)
	if p["InstanceType"] != "t4g.nano" || p["Monitoring"] != true || p["KeyName"] != nil ||
		get(p, "CreditSpecification", "CPUCredits") != "standard" {
		t.Errorf("instance type %v, detailed monitoring %v, key pair %v, credits %v; want t4g.nano, true, none, standard",
			p["InstanceType"], p["Monitoring"], p["KeyName"], get(p, "CreditSpecification", "CPUCredits"))
	}
	ebs := get(p, "BlockDeviceMappings", 0, "Ebs")
	if get(ebs, "Encrypted") != true || get(ebs, "VolumeType") != "gp3" {
		t.Errorf("root volume = %v, want encrypted gp3", ebs)
	}
	image := joined(get(p, "ImageId"))
	params := fmt.Sprint(tpl["Parameters"])
	if !strings.Contains(params, "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64") || !strings.HasPrefix(image, "${SsmParameterValue") {
		t.Errorf("image %s is not the latest Amazon Linux 2023 arm64 (parameters %s)", image, params)
	}
	var imds any
	for _, lt := range resourcesOf(tpl, "AWS::EC2::LaunchTemplate") {
		imds = get(lt, "Properties", "LaunchTemplateData", "MetadataOptions", "HttpTokens")
	}
	if imds != "required" {
		t.Errorf("IMDSv2 HttpTokens = %v, want required", imds)
	}

	sgID, _ := get(p, "NetworkInterfaces", 0, "GroupSet", 0, "Fn::GetAtt", 0).(string)
	sg := resourcesOf(tpl, "AWS::EC2::SecurityGroup")[sgID]
	if in := get(sg, "Properties", "SecurityGroupIngress"); in != nil || len(resourcesOf(tpl, "AWS::EC2::SecurityGroupIngress")) != 0 {
		t.Errorf("inbound rules: %v", in)
	}
	egress := get(sg, "Properties", "SecurityGroupEgress").([]any)
	if len(egress) != 1 || get(egress[0], "CidrIp") != "0.0.0.0/0" || get(egress[0], "IpProtocol") != "tcp" ||
		get(egress[0], "FromPort") != 443.0 || get(egress[0], "ToPort") != 443.0 {
		t.Errorf("egress = %v, want only TCP 443", egress)
	}

	// Its own VPC: one public subnet, no NAT gateway, flow logs with a retention.
	if n := len(resourcesOf(tpl, "AWS::EC2::NatGateway")); n != 0 {
		t.Errorf("%d NAT gateways, want none", n)
	}
	if get(p, "NetworkInterfaces", 0, "AssociatePublicIpAddress") != true {
		t.Error("without NAT the host needs a public address")
	}
	vpcID := ""
	for id := range resourcesOf(tpl, "AWS::EC2::VPC") {
		vpcID = id
	}
	var flow map[string]any
	for _, f := range resourcesOf(tpl, "AWS::EC2::FlowLog") {
		flow = f
	}
	group, _ := get(flow, "Properties", "LogGroupName", "Ref").(string)
	if get(flow, "Properties", "ResourceId", "Ref") != vpcID || get(flow, "Properties", "TrafficType") != "ALL" ||
		get(resourcesOf(tpl, "AWS::Logs::LogGroup")[group], "Properties", "RetentionInDays") != 30.0 {
		t.Errorf("flow log = %v, want all traffic of the VPC to a log group kept 30 days", flow)
	}
}

// The host's role may invoke the API's two methods, read its own binary, and
// use Session Manager: nothing else.
func TestProducerHostRoleIsLeastPrivilege(t *testing.T) {
	s := synth(t, nil)
	tpl, inst := s.host(t)
	profile := resourcesOf(tpl, "AWS::IAM::InstanceProfile")[get(inst, "Properties", "IamInstanceProfile", "Ref").(string)]
	roleID := get(profile, "Properties", "Roles", 0, "Ref").(string)
	role := resourcesOf(tpl, "AWS::IAM::Role")[roleID]
	if got := fmt.Sprint(strs(get(role, "Properties", "ManagedPolicyArns"))); got != "[arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore]" {
		t.Errorf("managed policies = %s", got)
	}
	var grants []string
	for _, pol := range resourcesOf(tpl, "AWS::IAM::Policy") {
		if get(pol, "Properties", "Roles", 0, "Ref") != roleID {
			continue
		}
		for _, st := range get(pol, "Properties", "PolicyDocument", "Statement").([]any) {
			for _, r := range strs(get(st, "Resource")) {
				grants = append(grants, strings.Join(strs(get(st, "Action")), ",")+" on "+r)
			}
		}
	}
	sort.Strings(grants)
	if len(grants) != 3 {
		t.Fatalf("grants = %q, want invoke on 2 methods and read on the binary", grants)
	}
	for i, method := range []string{"/POST/v1", "/POST/v1/batch"} {
		g := grants[i]
		if !strings.HasPrefix(g, "execute-api:Invoke on arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:") || !strings.HasSuffix(g, method) {
			t.Errorf("grant %q, want execute-api:Invoke on ...%s", g, method)
		}
	}
	if !strings.HasPrefix(grants[2], "s3:GetObject on arn:${AWS::Partition}:s3:::") || strings.HasSuffix(grants[2], "/*") {
		t.Errorf("grant %q, want s3:GetObject on the binary's object only", grants[2])
	}
}

// The instance runs the real producer, built for its architecture, as a
// systemd service that restarts on failure, pointed at the deployed API.
func TestProducerHostRunsTheProducer(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		arch     elf.Machine
		env      []string
	}{
		{nil, elf.EM_AARCH64, []string{"TRIBUTARY_AUTH=iam", "TRIBUTARY_SOURCE=synthetic", "TRIBUTARY_RATE=1", "TRIBUTARY_BATCH_SIZE=500"}},
		{customSettings, elf.EM_X86_64, []string{"TRIBUTARY_SOURCE=file", "TRIBUTARY_FILES=/var/log/app/events.log,/var/log/app/more.log", "TRIBUTARY_RATE=5", "TRIBUTARY_BATCH_SIZE=100"}},
	} {
		s := synth(t, c.settings)
		_, inst := s.host(t)
		ud := userData(inst)
		apiID, _ := s.only(t, "AWS::ApiGateway::RestApi")
		for _, want := range append(c.env,
			"aws s3 cp 's3://",
			"TRIBUTARY_URL=https://${Fn::GetStackOutput",
			"Restart=on-failure",
			"ExecStart=/usr/local/bin/tributary-producer",
			"User=tributary",
			"systemctl enable --now tributary-producer",
		) {
			if !strings.Contains(ud, want) {
				t.Errorf("%v: user data lacks %q", c.settings, want)
			}
		}
		if !strings.Contains(fmt.Sprint(get(inst, "Properties", "UserData")), apiID) {
			t.Errorf("%v: user data does not point at this pipeline's API %s", c.settings, apiID)
		}
		for _, never := range []string{"git clone", "go build", "yum install", "dnf install"} {
			if strings.Contains(ud, never) {
				t.Errorf("%v: user data runs %q: no toolchain on the host", c.settings, never)
			}
		}
		// The asset staged in cdk.out is a static Linux binary for the instance.
		bin := stagedBinary(t, s.outdir)
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%v: staged producer is not an ELF binary: %v", c.settings, err)
		}
		if f.Machine != c.arch || f.Type != elf.ET_EXEC {
			t.Errorf("%v: binary is %v %v, want a static %v executable", c.settings, f.Machine, f.Type, c.arch)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%v: binary is dynamically linked", c.settings)
			}
		}
		f.Close()
	}
}

func stagedBinary(t *testing.T, outdir string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(outdir, "asset.*"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
			if f, err := elf.Open(m); err == nil {
				f.Close()
				return m
			}
		}
	}
	t.Fatalf("no producer binary among the assets in %s: %v", outdir, matches)
	return ""
}

func TestProducerHostInExistingVPC(t *testing.T) {
	s := synth(t, customSettings)
	tpl, inst := s.host(t)
	for _, typ := range []string{"AWS::EC2::VPC", "AWS::EC2::FlowLog", "AWS::EC2::InternetGateway", "AWS::Lambda::Function"} {
		if n := len(resourcesOf(tpl, typ)); n != 0 {
			t.Errorf("%d %s created in someone else's VPC", n, typ)
		}
	}
	p := props(inst)
	if get(p, "SubnetId") != "subnet-0123456789abcdef0" || p["AvailabilityZone"] != nil {
		t.Errorf("subnet %v, AZ %v: want the given subnet, the AZ left to it", get(p, "SubnetId"), p["AvailabilityZone"])
	}
	if params := fmt.Sprint(tpl["Parameters"]); !strings.Contains(params, "al2023-ami-kernel-6.1-x86_64") {
		t.Errorf("t3.micro must get the x86_64 image: %s", params)
	}
	_, sg := only(t, tpl, "AWS::EC2::SecurityGroup")
	if get(sg, "Properties", "VpcId") != "vpc-0123456789abcdef0" {
		t.Errorf("security group VPC = %v", get(sg, "Properties", "VpcId"))
	}
}

func TestProducerHostWithAPIKey(t *testing.T) {
	s := synth(t, apiKeySettings)
	tpl, inst := s.host(t)
	ud := userData(inst)
	if !strings.Contains(ud, "TRIBUTARY_AUTH=api-key") || !strings.Contains(ud, "aws apigateway get-api-key --api-key ${Fn::GetStackOutput") {
		t.Errorf("user data does not fetch the API key:\n%s", ud)
	}
	found := false
	for _, pol := range resourcesOf(tpl, "AWS::IAM::Policy") {
		for _, st := range get(pol, "Properties", "PolicyDocument", "Statement").([]any) {
			if get(st, "Action") == "apigateway:GET" {
				found = strings.Contains(joined(get(st, "Resource")), "::/apikeys/${Fn::GetStackOutput")
			}
		}
	}
	if !found {
		t.Error("the host may not read its API key (apigateway:GET on the key)")
	}
}

func TestProducerHostIsOneSetting(t *testing.T) {
	if s := synth(t, openSettings); s.producer != nil {
		t.Errorf("producerHost=false still builds %s", s.producer.name)
	}
	if s := synth(t, nil); s.producer == nil || s.producer.name != "Tributary-PROD-Producer" {
		t.Error("the host is deployed by default, as Tributary-PROD-Producer")
	}
}
