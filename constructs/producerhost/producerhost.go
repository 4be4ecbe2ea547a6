// Package producerhost is the EC2 instance that runs the Tributary producer
// as a systemd service: Amazon Linux 2023, no key pair, no inbound rules
// (Session Manager for access), HTTPS-only egress, IMDSv2, an encrypted root
// volume, detailed monitoring, and its own small VPC without NAT gateway
// (with flow logs), unless it is given a subnet of an existing VPC. The
// producer publishes its metrics to CloudWatch (Props.Namespace) and ships
// its log to a log group of its own (Logs), one stream per instance.
package producerhost

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/internal/logretention"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/internal/providerlogs"
	"github.com/tributary/tributary/internal/ingest"
)

// Defaults.
const (
	DefaultInstanceType = "t4g.nano" // arm64: the cheapest instance that runs the producer
	DefaultRate         = 1.0        // synthetic events per second
	DefaultSource       = "synthetic"
	// linger: with a low rate, a batch waits this long to fill, which keeps
	// the request count (API Gateway's price) low.
	linger      = "5s"
	serviceName = "tributary-producer"
	binaryPath  = "/usr/local/bin/" + serviceName
	stateDir    = "/var/lib/" + serviceName
)

var (
	instanceTypePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	vpcIDPattern        = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
	subnetIDPattern     = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	// What a metric namespace or dimension value may hold here: it is
	// written unquoted into the environment file and an IAM condition.
	metricNamePattern = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,255}$`)
)

// API is what the host needs of the ingest API (constructs/ingestapi
// provides it): where to send, how to authenticate, and the grants to do so.
type API interface {
	URL() *string  // the /v1 URL
	MaxBatch() int // the most events a /v1/batch request may carry
	Auth() ingest.Auth
	APIKeyID() *string // the usage plan's key with ingest.AuthAPIKey, else nil
	GrantInvoke(grantee awsiam.IGrantable) awsiam.Grant
	GrantReadAPIKey(grantee awsiam.IGrantable) awsiam.Grant
}

// Props configures the host. Empty and nil fields mean the documented default.
type Props struct {
	// API is the ingest API the producer sends to. Required.
	API API
	// Namespace is the CloudWatch namespace of the producer's metrics: the
	// role may publish there and nowhere else. Pipeline is the value of their
	// Pipeline dimension (their Host dimension is the instance id). Both
	// required; the app sets <stackNamePrefix>/<stageName> and
	// <stackNamePrefix>-<stageName>, so that two apps with the same stage in
	// one account keep apart.
	Namespace, Pipeline string
	// InstanceType: default t4g.nano (arm64). The producer is built for its architecture.
	InstanceType string
	// Source is synthetic or file; Files are the paths or glob patterns to follow with file.
	Source string
	Files  []string
	// Rate is synthetic events per second (0.01 to 10,000). Default: 1.
	Rate *float64
	// BatchSize is events per request: 1 posts to /v1, more to /v1/batch, up
	// to the API's MaxBatch. Default: the API's MaxBatch.
	BatchSize *int
	// VpcID and SubnetID place the host in an existing VPC (a subnet with a
	// route to the internet or VPC endpoints); both or neither.
	VpcID, SubnetID string
	// LogRetentionDays for the producer's log group and the VPC flow logs
	// (and CDK's default-security-group restricter's logs). Default:
	// logretention.Default.
	LogRetentionDays *int
}

type resolved struct {
	instanceType, source string
	rate                 float64
	batchSize            int
	logs                 awslogs.RetentionDays
}

// hiddenDirs are what the service's unit hides from it (PrivateTmp=yes,
// ProtectHome=yes): files there can never be read.
var hiddenDirs = []string{"/tmp", "/var/tmp", "/home", "/root", "/run/user"}

// Validate reports the first setting that is not allowed.
func (p Props) Validate() error {
	_, err := p.resolve()
	return err
}

func (p Props) resolve() (r resolved, err error) {
	r = resolved{instanceType: DefaultInstanceType, source: DefaultSource, rate: DefaultRate}
	if p.InstanceType != "" {
		r.instanceType = p.InstanceType
	}
	if !instanceTypePattern.MatchString(r.instanceType) {
		return r, check.Invalid("producerInstanceType", r.instanceType, "an EC2 instance type such as t4g.nano or t3.micro")
	}
	if p.Source != "" {
		r.source = p.Source
	}
	if err = check.OneOf("producerSource", r.source, "synthetic", "file"); err != nil {
		return
	}
	if r.source == "file" && len(p.Files) == 0 {
		return r, check.Invalid("producerFiles", "", "absolute paths or glob patterns on the host, comma-separated, when producerSource is file")
	}
	if r.source != "file" && len(p.Files) > 0 {
		return r, check.Invalid("producerFiles", strings.Join(p.Files, ","), "unset unless producerSource is file (the host would not read them)")
	}
	for _, f := range p.Files {
		if err = validFile(f); err != nil {
			return
		}
	}
	if p.Rate != nil {
		r.rate = *p.Rate
	}
	if r.rate < 0.01 || r.rate > 10000 {
		return r, check.Invalid("producerRate", r.rate, "events per second from 0.01 to 10000")
	}
	if p.BatchSize != nil { // else the API's MaxBatch, known in New
		r.batchSize = *p.BatchSize
		if err = check.IntRange("producerBatchSize", r.batchSize, 1, ingest.MaxPackedBatch); err != nil {
			return
		}
	}
	switch {
	case p.VpcID+p.SubnetID == "":
	case !vpcIDPattern.MatchString(p.VpcID):
		return r, check.Invalid("producerVpcId", p.VpcID, "a VPC id (vpc-...), set together with producerSubnetId")
	case !subnetIDPattern.MatchString(p.SubnetID):
		return r, check.Invalid("producerSubnetId", p.SubnetID, "a subnet id (subnet-...) of producerVpcId")
	}
	// Unset, they are reported by New; the app sets them from settings it
	// has checked, so these answer a construct's caller.
	const names = "1-255 letters, digits and . _ - /"
	switch {
	case p.Namespace != "" && !metricNamePattern.MatchString(p.Namespace):
		return r, check.Invalid("Namespace", p.Namespace, names)
	case strings.HasPrefix(p.Namespace, "AWS/"):
		return r, check.Invalid("Namespace", p.Namespace, "a namespace not starting with AWS/ (CloudWatch keeps those for AWS services)")
	case p.Pipeline != "" && !metricNamePattern.MatchString(p.Pipeline):
		return r, check.Invalid("Pipeline", p.Pipeline, names)
	}
	retention, err := logretention.OrDefault(p.LogRetentionDays)
	r.logs = retention.Logs
	return
}

// validFile accepts an absolute path or glob pattern that the service can
// read and that the environment file carries unchanged.
func validFile(f string) error {
	if !filepath.IsAbs(f) || strings.ContainsAny(f, " '\"\\$`\n,") {
		return check.Invalid("producerFiles", f, "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas")
	}
	// Glob reports a malformed pattern anywhere in it (Match may stop early);
	// what it finds on the synthesizing machine does not matter.
	if _, err := filepath.Glob(f); err != nil {
		return check.Invalid("producerFiles", f, "a valid glob pattern (* ? [...])")
	}
	clean := filepath.Clean(f)
	for _, d := range hiddenDirs {
		if clean == d || strings.HasPrefix(clean, d+"/") {
			return check.Invalid("producerFiles", f, "paths outside "+strings.Join(hiddenDirs, ", ")+", which the service's systemd unit hides from it (PrivateTmp, ProtectHome)")
		}
	}
	return nil
}

// MaxLaunchTemplateName is the longest name EC2 allows a launch template.
const MaxLaunchTemplateName = 128

// LaunchTemplateNameLength is the length of the name CDK gives the launch
// template that requires IMDSv2 (@aws-cdk/aws-ec2:uniqueImdsv2TemplateName)
// of a host with construct id hostID directly in the stack stackID: the
// letters and digits of the construct path, then an 8-character hash.
func LaunchTemplateNameLength(stackID, hostID string) int {
	n := 0
	for _, r := range stackID + hostID + "Instance" + "LaunchTemplate" {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			n++
		}
	}
	return n + 8
}

// Architecture is the Go architecture (arm64 or amd64) of an instance type.
func Architecture(instanceType string) string {
	if awsec2.NewInstanceType(jsii.String(instanceType)).Architecture() == awsec2.InstanceArchitecture_ARM_64 {
		return "arm64"
	}
	return "amd64"
}

// ProducerHost wraps the instance and what it needs.
type ProducerHost struct {
	constructs.Construct
	Instance      awsec2.Instance
	SecurityGroup awsec2.SecurityGroup
	Role          awsiam.Role
	// Telemetry is the role's policy for the producer's metrics and log.
	Telemetry awsiam.Policy
	// Binary is the producer, built for the instance's architecture during synth.
	Binary awss3assets.Asset
	// Vpc is the host's own VPC, or nil in an existing one; FlowLogs its flow-log group.
	Vpc      awsec2.Vpc
	FlowLogs awslogs.LogGroup
	// Logs is the producer's own log group, a stream per instance.
	Logs awslogs.LogGroup
	// Namespace and Pipeline are Props': where the producer's metrics are and
	// the value of their Pipeline dimension.
	Namespace, Pipeline string
}

// New creates the host. It panics with a one-line message if props are invalid.
func New(scope constructs.Construct, id string, props *Props) *ProducerHost {
	if props == nil || props.API == nil || props.Namespace == "" || props.Pipeline == "" {
		panic("producerhost: API, Namespace and Pipeline are required")
	}
	r, err := props.resolve()
	if err != nil {
		panic(err.Error())
	}
	if r.batchSize == 0 {
		r.batchSize = props.API.MaxBatch()
	}
	if err = check.IntRange("producerBatchSize", r.batchSize, 1, props.API.MaxBatch()); err != nil {
		panic(err.Error())
	}
	h := &ProducerHost{Construct: constructs.NewConstruct(scope, jsii.String(id)),
		Namespace: props.Namespace, Pipeline: props.Pipeline}
	// Named by CloudFormation: a production destroy keeps it, and a fixed
	// name would make the next deployment of the stage fail. The producer
	// and LogsCommand get its name by reference.
	h.Logs = awslogs.NewLogGroup(h.Construct, jsii.String("Logs"), &awslogs.LogGroupProps{Retention: r.logs})
	vpc, subnets := h.network(props, r)
	h.SecurityGroup = awsec2.NewSecurityGroup(h.Construct, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      jsii.String("Tributary producer host: no inbound; outbound HTTPS only (the API, Session Manager, S3, CloudWatch)"),
		AllowAllOutbound: jsii.Bool(false),
	})
	h.SecurityGroup.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)), jsii.String("HTTPS"), nil)
	h.role(props.API, Architecture(r.instanceType))
	h.instance(props, r, vpc, subnets)
	return h
}

// network is the host's own one-subnet VPC with flow logs, or the subnet of
// an existing VPC it is given.
func (h *ProducerHost) network(p *Props, r resolved) (awsec2.IVpc, *awsec2.SubnetSelection) {
	if p.VpcID == "" {
		h.Vpc = awsec2.NewVpc(h.Construct, jsii.String("Vpc"), &awsec2.VpcProps{
			IpAddresses: awsec2.IpAddresses_Cidr(jsii.String("10.42.0.0/24")),
			MaxAzs:      jsii.Number(1),
			// No NAT gateway (about $32 a month): the host has a public address
			// and no inbound rules.
			NatGateways:         jsii.Number(0),
			SubnetConfiguration: &[]*awsec2.SubnetConfiguration{{Name: jsii.String("Public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(26)}},
		})
		h.FlowLogs = awslogs.NewLogGroup(h.Construct, jsii.String("FlowLogs"), &awslogs.LogGroupProps{Retention: r.logs})
		h.Vpc.AddFlowLog(jsii.String("FlowLog"), &awsec2.FlowLogOptions{
			Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(h.FlowLogs, nil),
			TrafficType: awsec2.FlowLogTrafficType_ALL,
		})
		providerlogs.Confine(h.Construct, "Custom::VpcRestrictDefaultSGCustomResourceProvider", r.logs)
		return h.Vpc, &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC}
	}
	vpc := awsec2.Vpc_FromVpcAttributes(h.Construct, jsii.String("Vpc"), &awsec2.VpcAttributes{
		VpcId: jsii.String(p.VpcID), AvailabilityZones: &[]*string{awscdk.Fn_Select(jsii.Number(0), awscdk.Fn_GetAzs(nil))},
	})
	// The L2 wants the subnet's AZ; CloudFormation takes it from the subnet
	// (the instance's AvailabilityZone is removed in instance), so a placeholder does.
	subnet := awsec2.Subnet_FromSubnetAttributes(h.Construct, jsii.String("Subnet"), &awsec2.SubnetAttributes{
		SubnetId: jsii.String(p.SubnetID), AvailabilityZone: awscdk.Fn_Select(jsii.Number(0), awscdk.Fn_GetAzs(nil)),
	})
	awscdk.Annotations_Of(subnet).AcknowledgeWarning(jsii.String("@aws-cdk/aws-ec2:noSubnetRouteTableId"),
		jsii.String("The host only launches into the subnet; nothing reads its route table."))
	return vpc, &awsec2.SubnetSelection{Subnets: &[]awsec2.ISubnet{subnet}}
}

// role is what the instance may do: invoke the API's two methods, read its
// own binary (and the API key, with API keys), and use Session Manager.
func (h *ProducerHost) role(api API, goarch string) {
	h.Role = awsiam.NewRole(h.Construct, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		Description: jsii.String("Tributary producer host: invoke the ingest API's methods, read its own binary, publish its metrics and log, Session Manager"),
	})
	api.GrantInvoke(h.Role)
	h.Binary = awss3assets.NewAsset(h.Construct, jsii.String("Binary"), &awss3assets.AssetProps{
		Path: jsii.String(producerDir()),
		// The hash of the binary itself: it changes only when the code or Go does.
		AssetHashType: awscdk.AssetHashType_OUTPUT,
		Bundling: &awscdk.BundlingOptions{
			// Never pulled: goBuild bundles locally and always succeeds or panics.
			Image:      awscdk.DockerImage_FromRegistry(jsii.String("golang")),
			Local:      &goBuild{goarch: goarch},
			OutputType: awscdk.BundlingOutput_SINGLE_FILE,
		},
	})
	h.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings(*h.Binary.Bucket().ArnForObjects(h.Binary.S3ObjectKey())),
	}))
	api.GrantReadAPIKey(h.Role)
	h.grantTelemetry()
	nag.Suppress(h.Role, "AwsSolutions-IAM4",
		"Session Manager access (instead of SSH and inbound rules) uses AmazonSSMManagedInstanceCore, the AWS managed policy that Systems Manager keeps current for it.",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore")
}

// grantTelemetry lets the producer publish its metrics, in its namespace
// only, and write its log, in its own log group only.
func (h *ProducerHost) grantTelemetry() {
	// PutMetricData has no resource type: "*" is the only resource it
	// takes, and the namespace condition is what confines it.
	metrics := awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("cloudwatch:PutMetricData"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"cloudwatch:namespace": h.Namespace}},
	})
	// The log group's Arn attribute (…:log-group:<name>:*) is the group and
	// its streams, each instance's named by its id once it runs.
	logs := awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: &[]*string{h.Logs.LogGroupArn()},
	})
	// A policy of their own, so that the suppression covers PutMetricData's
	// statement and nothing the role is granted later.
	h.Telemetry = awsiam.NewPolicy(h.Construct, jsii.String("Telemetry"), &awsiam.PolicyProps{
		Roles: &[]awsiam.IRole{h.Role}, Statements: &[]awsiam.PolicyStatement{metrics, logs},
	})
	nag.Suppress(h.Telemetry, "AwsSolutions-IAM5",
		"cloudwatch:PutMetricData takes no resource but *, and its condition StringEquals cloudwatch:namespace = "+h.Namespace+
			" confines it to the producer's own namespace.",
		"Resource::*")
}

// instance is the hardened EC2 instance that runs the producer.
func (h *ProducerHost) instance(p *Props, r resolved, vpc awsec2.IVpc, subnets *awsec2.SubnetSelection) {
	cpu := awsec2.AmazonLinuxCpuType_X86_64
	if Architecture(r.instanceType) == "arm64" {
		cpu = awsec2.AmazonLinuxCpuType_ARM_64
	}
	ip := &awsec2.InstanceProps{
		Vpc:           vpc,
		VpcSubnets:    subnets,
		InstanceType:  awsec2.NewInstanceType(jsii.String(r.instanceType)),
		MachineImage:  awsec2.MachineImage_LatestAmazonLinux2023(&awsec2.AmazonLinux2023ImageSsmParameterProps{CpuType: cpu}),
		SecurityGroup: h.SecurityGroup,
		Role:          h.Role,
		// Session Manager instead of SSH: no key pair, no inbound rule.
		SsmSessionPermissions: jsii.Bool(true),
		RequireImdsv2:         jsii.Bool(true),
		DetailedMonitoring:    jsii.Bool(true),
		BlockDevices: &[]*awsec2.BlockDevice{{
			DeviceName: jsii.String("/dev/xvda"),
			Volume: awsec2.BlockDeviceVolume_Ebs(jsii.Number(8), &awsec2.EbsDeviceOptions{
				Encrypted: jsii.Bool(true), VolumeType: awsec2.EbsDeviceVolumeType_GP3, DeleteOnTermination: jsii.Bool(true),
			}),
		}},
		PropagateTagsToVolumeOnCreation: jsii.Bool(true),
		UserData:                        h.userData(p, r),
		// A new binary or new settings replace the instance, which starts clean with them.
		UserDataCausesReplacement: jsii.Bool(true),
	}
	if p.VpcID == "" {
		ip.AssociatePublicIpAddress = jsii.Bool(true) // no NAT: the public address is the way out
	}
	if strings.HasPrefix(r.instanceType, "t") {
		ip.CreditSpecification = awsec2.CpuCredits_STANDARD // no surplus-credit charges
	}
	h.Instance = awsec2.NewInstance(h.Construct, jsii.String("Instance"), ip)
	// The producer publishes and ships its log from its first minute.
	h.Instance.Node().AddDependency(h.Telemetry, h.Logs)
	if p.VpcID != "" {
		h.Instance.Node().DefaultChild().(awscdk.CfnResource).AddPropertyDeletionOverride(jsii.String("AvailabilityZone"))
	}
	nag.Suppress(h.Instance, "AwsSolutions-EC29",
		"The host is disposable: cdk deploy replaces it whenever its binary or settings change, and on termination the producer delivers what is in flight within its shutdown timeout; termination protection would make those deployments and cdk destroy fail.")
}

// userData installs the binary and runs it as a systemd service that
// restarts on failure, as an unprivileged user.
func (h *ProducerHost) userData(p *Props, r resolved) awsec2.UserData {
	ud := awsec2.UserData_ForLinux(&awsec2.LinuxUserDataOptions{Shebang: jsii.String("#!/bin/bash\nset -euo pipefail")})
	ud.AddS3DownloadCommand(&awsec2.S3DownloadOptions{
		Bucket: h.Binary.Bucket(), BucketKey: h.Binary.S3ObjectKey(), LocalFile: jsii.String(binaryPath),
	})
	env := []string{
		"TRIBUTARY_URL=" + *p.API.URL(),
		"TRIBUTARY_AUTH=" + p.API.Auth().Flag(),
		"TRIBUTARY_SOURCE=" + r.source,
		"TRIBUTARY_RATE=" + strconv.FormatFloat(r.rate, 'f', -1, 64),
		"TRIBUTARY_BATCH_SIZE=" + strconv.Itoa(r.batchSize),
		"TRIBUTARY_LINGER=" + linger,
		"TRIBUTARY_CHECKPOINT=" + stateDir + "/checkpoint.json",
		"TRIBUTARY_DEAD_LETTER=" + stateDir + "/dead-letter.ndjson",
		// Events read but not yet confirmed survive a restart here, as
		// the checkpoint does: the state directory, not the working one.
		"TRIBUTARY_SPOOL=" + stateDir + "/spool.ndjson",
		"TRIBUTARY_CLOUDWATCH_NAMESPACE=" + h.Namespace,
		"TRIBUTARY_CLOUDWATCH_LOG_GROUP=" + *h.Logs.LogGroupName(),
		"TRIBUTARY_PIPELINE=" + h.Pipeline,
	}
	if r.source == "file" {
		env = append(env, "TRIBUTARY_FILES="+strings.Join(p.Files, ","))
	}
	add := func(cmds ...string) { ud.AddCommands(*jsii.Strings(cmds...)...) }
	add(
		"chmod 0755 "+binaryPath,
		"id tributary >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin tributary",
		"install -d -o tributary -g tributary -m 0750 "+stateDir,
		"umask 077",
		"cat > /etc/"+serviceName+".env <<'EOF'\n"+strings.Join(env, "\n")+"\nEOF",
	)
	// The Host dimension and log stream are the instance id: without it the
	// metrics would not match the alarms, so the service is not started.
	const imds = "http://169.254.169.254/latest"
	fail := func(what string) string {
		return ` || { echo "tributary: ` + what + `: TRIBUTARY_HOST unknown, the producer is not started" >&2; exit 1; }`
	}
	add(
		"imds_token=$(curl -sSf --retry 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "+imds+"/api/token)"+fail("no IMDSv2 token"),
		`instance_id=$(curl -sSf --retry 5 -H "X-aws-ec2-metadata-token: $imds_token" `+imds+"/meta-data/instance-id)"+fail("IMDSv2 gave no instance id"),
		`[[ $instance_id =~ ^i-[0-9a-f]+$ ]]`+fail("IMDSv2 gave a malformed instance id"),
		`echo "TRIBUTARY_HOST=$instance_id" >> /etc/`+serviceName+".env",
	)
	if keyID := p.API.APIKeyID(); keyID != nil {
		add(fmt.Sprintf(
			`echo "TRIBUTARY_API_KEY=$(aws apigateway get-api-key --api-key %s --include-value --query value --output text --region %s)" >> /etc/%s.env`,
			*keyID, *awscdk.Aws_REGION(), serviceName))
	}
	add(
		"cat > /etc/systemd/system/"+serviceName+".service <<'EOF'\n"+unit+"EOF",
		"systemctl daemon-reload",
		"systemctl enable --now "+serviceName,
	)
	return ud
}

// unit runs the producer unprivileged; SIGTERM gives it its shutdown timeout
// (10 s) to deliver what is in flight before systemd's 30 s.
const unit = `[Unit]
Description=Tributary producer: sends events to the ingest API
After=network-online.target
Wants=network-online.target

[Service]
User=tributary
Group=tributary
EnvironmentFile=/etc/` + serviceName + `.env
ExecStart=` + binaryPath + `
Restart=on-failure
RestartSec=5
KillSignal=SIGTERM
TimeoutStopSec=30
# Every followed file stays open while its patterns match it (and a rotated
# one until it is read): room for many more than the default 1,024.
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=` + stateDir + `

[Install]
WantedBy=multi-user.target
`
