package producerhost_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"

	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/producerhost"
	"github.com/tributary/tributary/internal/ingest"
)

// fakeAPI satisfies producerhost.API for props that are rejected before
// the host asks anything of its API.
type fakeAPI struct{}

func (fakeAPI) URL() *string                                   { return nil }
func (fakeAPI) MaxBatch() int                                  { return ingest.MaxBatch }
func (fakeAPI) Auth() ingest.Auth                              { return ingest.AuthIAM }
func (fakeAPI) APIKeyID() *string                              { return nil }
func (fakeAPI) GrantInvoke(awsiam.IGrantable) awsiam.Grant     { return nil }
func (fakeAPI) GrantReadAPIKey(awsiam.IGrantable) awsiam.Grant { return nil }

const hiddenAllowed = "paths outside /tmp, /var/tmp, /home, /root, /run/user, which the service's systemd unit hides from it (PrivateTmp, ProtectHome)"

// producerFiles takes absolute paths and glob patterns the service can read
// and the environment file carries unchanged; it rejects relative paths,
// characters the file would mangle, malformed patterns, and anything in the
// folders the unit hides from the service, however the path is spelt.
func TestProducerFiles(t *testing.T) {
	for _, ok := range []string{
		"/var/log/app.log", "/var/log/app/*.log", "/srv/events/[a-c]?.ndjson", "/var/log/app/[!.]*.json",
		"/opt/app/logs/**.log", "/data/*/events.log",
		// neighbours of hidden folders are not hidden
		"/tmpdata/x.log", "/var/tmpfiles/x.log", "/homes/x.log", "/rootfs/x.log", "/run/users/x.log", "/run/app.log",
	} {
		p := producerhost.Props{Source: "file", Files: []string{ok}}
		if err := p.Validate(); err != nil {
			t.Errorf("producerFiles %q: %v, want accepted", ok, err)
		}
	}
	for f, allowed := range map[string]string{
		"logs/app.log":           "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		"./app.log":              "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		"*.log":                  "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		"/var/log/my app.log":    "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		"/var/log/$HOST.log":     "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		"/var/log/it's.log":      "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		"/var/log/a,b.log":       "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		`/var/log/\*.log`:        "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		"/var/log/a\n.log":       "absolute paths or glob patterns without spaces, quotes, $, backslashes or commas",
		"/var/log/[a-.log":       "a valid glob pattern (* ? [...])",
		"/var/log/[":             "a valid glob pattern (* ? [...])",
		"/var/log/x[]":           "a valid glob pattern (* ? [...])",
		"/var/log/*[":            "a valid glob pattern (* ? [...])",
		"/var/log/*/[":           "a valid glob pattern (* ? [...])",
		"/tmp":                   hiddenAllowed,
		"/tmp/x.log":             hiddenAllowed,
		"/tmp/*.log":             hiddenAllowed,
		"/var/tmp/x.log":         hiddenAllowed,
		"/home/ec2-user/app.log": hiddenAllowed,
		"/home":                  hiddenAllowed,
		"/root/events.log":       hiddenAllowed,
		"/run/user/1000/x.log":   hiddenAllowed,
		"/var/log/../../tmp/x":   hiddenAllowed,
		"//home/x.log":           hiddenAllowed,
		"/tmp/../tmp/./x.log":    hiddenAllowed,
	} {
		want := fmt.Sprintf("producerFiles: invalid value %q; allowed: %s", f, allowed)
		p := producerhost.Props{Source: "file", Files: []string{"/var/log/ok.log", f}}
		if err := p.Validate(); err == nil || err.Error() != want {
			t.Errorf("producerFiles %q: %v\nwant %s", f, err, want)
		}
	}
}

// Invalid props fail before anything is created, with one line naming the
// setting, the value and what is allowed; the limits themselves pass.
func TestInvalidProps(t *testing.T) {
	stack := cdktest.NewStack()
	for i, c := range []struct {
		props producerhost.Props
		want  string
	}{
		{producerhost.Props{InstanceType: "large"}, `producerInstanceType: invalid value "large"; allowed: an EC2 instance type such as t4g.nano or t3.micro`},
		{producerhost.Props{InstanceType: "T4G.nano"}, `producerInstanceType: invalid value "T4G.nano"; allowed: an EC2 instance type such as t4g.nano or t3.micro`},
		{producerhost.Props{Source: "stdin"}, `producerSource: invalid value "stdin"; allowed: one of ["synthetic" "file"]`},
		{producerhost.Props{Source: "file"}, `producerFiles: invalid value ""; allowed: absolute paths or glob patterns on the host, comma-separated, when producerSource is file`},
		{producerhost.Props{Source: "file", Files: []string{"/tmp/x.log"}}, `producerFiles: invalid value "/tmp/x.log"; allowed: ` + hiddenAllowed},
		{producerhost.Props{Files: []string{"/var/log/a.log", "/var/log/b.log"}}, `producerFiles: invalid value "/var/log/a.log,/var/log/b.log"; allowed: unset unless producerSource is file (the host would not read them)`},
		{producerhost.Props{Rate: ref(0.0)}, `producerRate: invalid value 0; allowed: events per second from 0.01 to 10000`},
		{producerhost.Props{Rate: ref(0.009)}, `producerRate: invalid value 0.009; allowed: events per second from 0.01 to 10000`},
		{producerhost.Props{Rate: ref(10000.5)}, `producerRate: invalid value 10000.5; allowed: events per second from 0.01 to 10000`},
		{producerhost.Props{BatchSize: ref(0)}, `producerBatchSize: invalid value 0; allowed: an integer from 1 to 1000`},
		{producerhost.Props{BatchSize: ref(1001)}, `producerBatchSize: invalid value 1001; allowed: an integer from 1 to 1000`},
		{producerhost.Props{VpcID: "vpc-0123456789abcdef0"}, `producerSubnetId: invalid value ""; allowed: a subnet id (subnet-...) of producerVpcId`},
		{producerhost.Props{SubnetID: "subnet-0123456789abcdef0"}, `producerVpcId: invalid value ""; allowed: a VPC id (vpc-...), set together with producerSubnetId`},
		{producerhost.Props{VpcID: "vpc-xyz", SubnetID: "subnet-0123456789abcdef0"}, `producerVpcId: invalid value "vpc-xyz"; allowed: a VPC id (vpc-...), set together with producerSubnetId`},
		{producerhost.Props{VpcID: "vpc-0123456789abcdef0", SubnetID: "sn-0123456789abcdef0"}, `producerSubnetId: invalid value "sn-0123456789abcdef0"; allowed: a subnet id (subnet-...) of producerVpcId`},
		{producerhost.Props{Namespace: "Acme dev"}, `Namespace: invalid value "Acme dev"; allowed: 1-255 letters, digits and . _ - /`},
		{producerhost.Props{Namespace: strings.Repeat("a", 256)}, `Namespace: invalid value "` + strings.Repeat("a", 256) + `"; allowed: 1-255 letters, digits and . _ - /`},
		{producerhost.Props{Namespace: "AWS/dev"}, `Namespace: invalid value "AWS/dev"; allowed: a namespace not starting with AWS/ (CloudWatch keeps those for AWS services)`},
		{producerhost.Props{Pipeline: "Acme-dev\nEOF"}, `Pipeline: invalid value "Acme-dev\nEOF"; allowed: 1-255 letters, digits and . _ - /`},
		{producerhost.Props{LogRetentionDays: ref(8)}, `logRetentionDays: invalid value 8; allowed: one of [1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653] (days CloudWatch Logs supports)`},
	} {
		if err := c.props.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v\nwant %q", c.props, err, c.want)
		}
		p := c.props
		p.API = fakeAPI{}
		if p.Namespace == "" {
			p.Namespace = "Tributary/PROD"
		}
		if p.Pipeline == "" {
			p.Pipeline = "Tributary-PROD"
		}
		cdktest.Panics(t, c.want, func() { producerhost.New(stack, fmt.Sprintf("Invalid%d", i), &p) })
	}
	// Past the API's own limit (500 here) only New can tell.
	cdktest.Panics(t, `producerBatchSize: invalid value 501; allowed: an integer from 1 to 500`,
		func() {
			producerhost.New(stack, "OverTheAPI", &producerhost.Props{API: fakeAPI{}, Namespace: "Tributary/PROD", Pipeline: "Tributary-PROD", BatchSize: ref(501)})
		})
	const required = "producerhost: API, Namespace and Pipeline are required"
	cdktest.Panics(t, required, func() { producerhost.New(stack, "NoProps", nil) })
	cdktest.Panics(t, required, func() {
		producerhost.New(stack, "NoAPI", &producerhost.Props{Namespace: "Tributary/PROD", Pipeline: "Tributary-PROD"})
	})
	cdktest.Panics(t, required, func() {
		producerhost.New(stack, "NoNamespace", &producerhost.Props{API: fakeAPI{}, Pipeline: "Tributary-PROD"})
	})
	cdktest.Panics(t, required, func() {
		producerhost.New(stack, "NoPipeline", &producerhost.Props{API: fakeAPI{}, Namespace: "Tributary/PROD"})
	})
	if n := len(*stack.Node().Children()); n != 0 {
		t.Errorf("rejected props left %d constructs in the stack", n)
	}

	for _, ok := range []producerhost.Props{
		{Rate: ref(0.01), BatchSize: ref(1)},
		{Rate: ref(10000.0), BatchSize: ref(500), InstanceType: "m7g.2xlarge", LogRetentionDays: ref(1)},
		{Source: "synthetic", VpcID: "vpc-01234567", SubnetID: "subnet-0123456789abcdef0"},
		{Namespace: "Acme.Data/dev_2-" + strings.Repeat("a", 239), Pipeline: "Acme.Data-dev_2/" + strings.Repeat("a", 239)},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
}

// Architecture is the Go architecture of an instance type: arm64 for
// Graviton types, amd64 for the others.
func TestArchitecture(t *testing.T) {
	for typ, want := range map[string]string{
		"t4g.nano": "arm64", "c7g.medium": "arm64", "m8g.large": "arm64", "t3.micro": "amd64", "t3a.small": "amd64", "m5.large": "amd64",
	} {
		if got := producerhost.Architecture(typ); got != want {
			t.Errorf("Architecture(%s) = %s, want %s", typ, got, want)
		}
	}
}

// LaunchTemplateNameLength predicts the length of the name CDK gives the
// IMDSv2 launch template, which the composition checks against EC2's 128
// before synth: it must be exactly the length CDK generates, here for the
// default stack and for one at the limit.
func TestLaunchTemplateNameLength(t *testing.T) {
	for _, s := range []*synthesized{cfgDefault(t), cfgExisting(t), cfgNonBurstable(t)} {
		_, lt := s.one(t, "AWS::EC2::LaunchTemplate", nil)
		name, _ := lt["LaunchTemplateName"].(string)
		if got, want := producerhost.LaunchTemplateNameLength(s.stackID, hostID), len(name); got != want {
			t.Errorf("LaunchTemplateNameLength(%q, %q) = %d; CDK named it %q (%d)", s.stackID, hostID, got, name, want)
		}
	}
	if n := producerhost.LaunchTemplateNameLength(defaultStackID, hostID); n != 55 {
		t.Errorf("default stack: %d, want 55", n)
	}
	if n := producerhost.LaunchTemplateNameLength(longStackID, hostID); n != producerhost.MaxLaunchTemplateName {
		t.Errorf("long stack: %d, want exactly the limit %d", n, producerhost.MaxLaunchTemplateName)
	}
}
