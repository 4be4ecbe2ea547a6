package producerhost_test

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/internal/ingest"
)

// userData is the instance's user data script, with ${LogicalId} and
// ${AWS::Region} where CloudFormation fills in values.
func (s *synthesized) userData(t *testing.T) string {
	t.Helper()
	_, inst := s.instance(t)
	return cdktest.Joined(get(inst, "UserData", "Fn::Base64"))
}

// heredoc is the body of the here-document that writes file.
func heredoc(t *testing.T, script, file string) string {
	t.Helper()
	start := "cat > " + file + " <<'EOF'\n"
	i := strings.Index(script, start)
	if i < 0 {
		t.Fatalf("user data does not write %s with a quoted here-document:\n%s", file, script)
	}
	body := script[i+len(start):]
	end := strings.Index(body, "\nEOF\n")
	if end < 0 {
		t.Fatalf("the here-document writing %s does not end", file)
	}
	return body[:end+1]
}

// inOrder checks that script holds each fragment, each after the one before.
func inOrder(t *testing.T, name, script string, fragments ...string) {
	t.Helper()
	at := 0
	for _, f := range fragments {
		i := strings.Index(script[at:], f)
		if i < 0 {
			t.Errorf("%s: user data lacks, or has out of order, %q\n%s", name, f, script)
			return
		}
		at += i + len(f)
	}
}

// The user data downloads the binary, creates an unprivileged user and its
// state folder, writes the settings (literally: a quoted here-document)
// with umask 077, fetches the API key into them with API_KEY, and runs the
// producer as a systemd service that restarts on failure and cannot read
// what the unit hides. It installs no toolchain and builds nothing.
func TestUserDataRunsTheProducer(t *testing.T) {
	for _, c := range []struct {
		s   *synthesized
		env []string
	}{
		{cfgDefault(t), []string{"TRIBUTARY_AUTH=iam", "TRIBUTARY_SOURCE=synthetic", "TRIBUTARY_RATE=1", "TRIBUTARY_BATCH_SIZE=500"}},
		{cfgExisting(t), []string{"TRIBUTARY_AUTH=api-key", "TRIBUTARY_SOURCE=file", "TRIBUTARY_RATE=2.5", "TRIBUTARY_BATCH_SIZE=100"}},
		{cfgNonBurstable(t), []string{"TRIBUTARY_AUTH=iam", "TRIBUTARY_SOURCE=synthetic", "TRIBUTARY_RATE=1", "TRIBUTARY_BATCH_SIZE=1"}},
	} {
		s := c.s
		name := s.stackID
		ud := s.userData(t)
		url := cdktest.Joined(cdktest.Resolved(s.stack, s.api.URL()))
		if !strings.HasPrefix(url, "https://${") || !strings.HasSuffix(url, "/v1") {
			t.Fatalf("%s: the API's URL() resolves to %s", name, url)
		}
		env := append([]string{"TRIBUTARY_URL=" + url}, c.env...)
		env = append(env, "TRIBUTARY_LINGER=5s", "TRIBUTARY_CHECKPOINT=/var/lib/tributary-producer/checkpoint.json",
			"TRIBUTARY_DEAD_LETTER=/var/lib/tributary-producer/dead-letter.ndjson", "TRIBUTARY_SPOOL=/var/lib/tributary-producer/spool.ndjson")
		// The CloudWatch contract: the namespace the role may publish to,
		// the host's own log group (created before the instance), the
		// Pipeline dimension.
		logsID := "HostLogsC0C95A2C"
		env = append(env, "TRIBUTARY_CLOUDWATCH_NAMESPACE="+s.namespace, "TRIBUTARY_CLOUDWATCH_LOG_GROUP=${"+logsID+"}",
			"TRIBUTARY_PIPELINE="+s.pipeline)
		instance, _ := s.instance(t)
		deps := fmt.Sprint(get(s.resource(t, instance), "DependsOn"))
		if !strings.Contains(deps, logsID) || !strings.Contains(deps, nag.LogicalID(s.host.Telemetry)) {
			t.Errorf("%s: the instance depends on %s, want its log group %s and telemetry policy first", name, deps, logsID)
		}
		if s == cfgExisting(t) {
			env = append(env, "TRIBUTARY_FILES=/var/log/app/*.log,/srv/events/current.ndjson")
		}
		if got, want := heredoc(t, ud, "/etc/tributary-producer.env"), strings.Join(env, "\n")+"\n"; got != want {
			t.Errorf("%s: environment file\n%s\nwant\n%s", name, got, want)
		}
		b := s.binary(t)
		fragments := []string{
			"#!/bin/bash\nset -euo pipefail\n",
			"aws s3 cp 's3://" + b.bucket + "/" + b.objectKey + "' '/usr/local/bin/tributary-producer'\n",
			"chmod 0755 /usr/local/bin/tributary-producer\n",
			"useradd --system --no-create-home --shell /sbin/nologin tributary\n",
			"install -d -o tributary -g tributary -m 0750 /var/lib/tributary-producer\n",
			"umask 077\n",
			"cat > /etc/tributary-producer.env <<'EOF'\n",
			// TRIBUTARY_HOST is the instance id, read from IMDSv2 (token
			// first); any failure stops the script before the service starts.
			"imds_token=$(curl -sSf --retry 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)" +
				` || { echo "tributary: no IMDSv2 token: TRIBUTARY_HOST unknown, the producer is not started" >&2; exit 1; }` + "\n",
			`instance_id=$(curl -sSf --retry 5 -H "X-aws-ec2-metadata-token: $imds_token" http://169.254.169.254/latest/meta-data/instance-id)` +
				` || { echo "tributary: IMDSv2 gave no instance id: TRIBUTARY_HOST unknown, the producer is not started" >&2; exit 1; }` + "\n",
			`[[ $instance_id =~ ^i-[0-9a-f]+$ ]] || { echo "tributary: IMDSv2 gave a malformed instance id: TRIBUTARY_HOST unknown, the producer is not started" >&2; exit 1; }` + "\n",
			`echo "TRIBUTARY_HOST=$instance_id" >> /etc/tributary-producer.env` + "\n",
		}
		keyLine := ""
		if s.auth == ingest.AuthAPIKey {
			keyID, _ := s.one(t, "AWS::ApiGateway::ApiKey", nil)
			keyLine = `echo "TRIBUTARY_API_KEY=$(aws apigateway get-api-key --api-key ${` + keyID + `} --include-value --query value --output text --region ${AWS::Region})" >> /etc/tributary-producer.env` + "\n"
			fragments = append(fragments, keyLine)
		} else if strings.Contains(ud, "TRIBUTARY_API_KEY") || strings.Contains(ud, "get-api-key") {
			t.Errorf("%s: user data fetches an API key with %s", name, s.auth)
		}
		fragments = append(fragments, "cat > /etc/systemd/system/tributary-producer.service <<'EOF'\n",
			"systemctl daemon-reload\n", "systemctl enable --now tributary-producer")
		inOrder(t, name, ud, fragments...)
		if keyLine != "" && strings.Count(ud, "get-api-key") != 1 {
			t.Errorf("%s: the API key is fetched more than once", name)
		}
		if strings.Count(ud, "TRIBUTARY_HOST=") != 1 || strings.Contains(ud, "meta-data/instance-id)\n") {
			t.Errorf("%s: TRIBUTARY_HOST written more than once, or the instance id read without failing loudly", name)
		}

		unit := heredoc(t, ud, "/etc/systemd/system/tributary-producer.service")
		lines := map[string]bool{}
		for _, l := range strings.Split(unit, "\n") {
			lines[l] = true
		}
		for _, want := range []string{
			"User=tributary", "Group=tributary", "EnvironmentFile=/etc/tributary-producer.env",
			"ExecStart=/usr/local/bin/tributary-producer", "Restart=on-failure", "KillSignal=SIGTERM",
			"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
			"ReadWritePaths=/var/lib/tributary-producer", "LimitNOFILE=65536", "WantedBy=multi-user.target",
		} {
			if !lines[want] {
				t.Errorf("%s: unit lacks the line %q:\n%s", name, want, unit)
			}
		}
		for _, never := range []string{"set -x", "go build", "git clone", "yum install", "dnf install", "pip install", "User=root"} {
			if strings.Contains(ud, never) {
				t.Errorf("%s: user data contains %q", name, never)
			}
		}
	}
}

// binaryAsset is the host's binary as the cloud assembly holds it.
type binaryAsset struct {
	path              string // the staged file
	packaging         string
	bucket, objectKey string
}

// binary reads the assets manifest for the host's Binary asset.
func (s *synthesized) binary(t *testing.T) binaryAsset {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.outdir, *s.stack.ArtifactId()+".assets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Files map[string]struct {
			Source struct {
				Path, Packaging string
			}
			Destinations map[string]struct {
				BucketName, ObjectKey string
			}
		}
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	staged := *s.host.Binary.AssetPath()
	if filepath.IsAbs(staged) {
		staged, _ = filepath.Rel(s.outdir, staged)
	}
	var found []binaryAsset
	for _, f := range manifest.Files {
		if f.Source.Path != staged {
			continue
		}
		for _, d := range f.Destinations {
			found = append(found, binaryAsset{filepath.Join(s.outdir, f.Source.Path), f.Source.Packaging, d.BucketName, d.ObjectKey})
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: the assets manifest has %d destinations for the binary %s, want 1", s.stackID, len(found), staged)
	}
	return found[0]
}

// The host builds the producer itself during synth: one static Linux
// executable for the instance's architecture (arm64 for t4g and c7g, amd64
// for t3), reproducibly (two builds for arm64 have one hash), staged as a
// single file (not a zip) in the cloud assembly. The object the user data
// downloads and the role may read is that asset's. Nothing is left behind:
// no bundling folder in the assembly, nothing in TMPDIR.
func TestBinaryIsBuiltForTheInstance(t *testing.T) {
	for _, c := range []struct {
		s       *synthesized
		goarch  string
		machine elf.Machine
	}{
		{cfgDefault(t), "arm64", elf.EM_AARCH64},
		{cfgExisting(t), "amd64", elf.EM_X86_64},
		{cfgNonBurstable(t), "arm64", elf.EM_AARCH64},
	} {
		s := c.s
		name := s.stackID
		b := s.binary(t)
		if b.packaging != "file" {
			t.Errorf("%s: binary packaged as %q, want file (not a zip)", name, b.packaging)
		}
		if b.bucket != "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}" {
			t.Errorf("%s: binary bucket %s", name, b.bucket)
		}
		if got := cdktest.Joined(cdktest.Resolved(s.stack, s.host.Binary.S3ObjectKey())); got != b.objectKey {
			t.Errorf("%s: S3ObjectKey() = %s, manifest uploads to %s", name, got, b.objectKey)
		}
		if fi, err := os.Lstat(b.path); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s: staged binary %s is not a regular file: %v", name, b.path, err)
		}
		f, err := elf.Open(b.path)
		if err != nil {
			t.Fatalf("%s: staged binary is not ELF: %v", name, err)
		}
		if f.Machine != c.machine || f.Type != elf.ET_EXEC || f.Class != elf.ELFCLASS64 {
			t.Errorf("%s: binary is %v %v %v, want a 64-bit %v executable", name, f.Class, f.Machine, f.Type, c.machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: binary is dynamically linked", name)
			}
		}
		f.Close()
		info, err := buildinfo.ReadFile(b.path)
		if err != nil {
			t.Fatalf("%s: no Go build info: %v", name, err)
		}
		settings := map[string]string{}
		for _, kv := range info.Settings {
			settings[kv.Key] = kv.Value
		}
		if got := fmt.Sprintf("%s %s/%s cgo=%s trimpath=%s", info.Path, settings["GOOS"], settings["GOARCH"], settings["CGO_ENABLED"], settings["-trimpath"]); got != "github.com/tributary/tributary/cmd/producer linux/"+c.goarch+" cgo=0 trimpath=true" {
			t.Errorf("%s: binary is %s", name, got)
		}
		if len(s.tmpLeft) != 0 {
			t.Errorf("%s: building the host left %v in TMPDIR", name, s.tmpLeft)
		}
		entries, _ := os.ReadDir(s.outdir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "bundling-temp-") {
				t.Errorf("%s: %s left in the cloud assembly", name, e.Name())
			}
		}
	}
	if a, b := *cfgDefault(t).host.Binary.AssetHash(), *cfgNonBurstable(t).host.Binary.AssetHash(); a != b {
		t.Errorf("two arm64 builds of the same code have hashes %s and %s: the build is not reproducible", a, b)
	}
	if a, b := *cfgDefault(t).host.Binary.AssetHash(), *cfgExisting(t).host.Binary.AssetHash(); a == b {
		t.Errorf("arm64 and amd64 binaries have one hash %s", a)
	}
}

// The user data's instance-id step, run by bash with a fake curl: it writes
// TRIBUTARY_HOST when IMDSv2 answers with an instance id, and otherwise
// stops the script with a tributary: line on stderr, writing nothing.
func TestUserDataReadsTheInstanceIDOrStops(t *testing.T) {
	ud := cfgDefault(t).userData(t)
	start := strings.Index(ud, "imds_token=")
	end := strings.Index(ud, ">> /etc/tributary-producer.env\n")
	if start < 0 || end < start {
		t.Fatalf("no instance-id step in the user data:\n%s", ud)
	}
	for _, c := range []struct {
		name, curl  string // the fake curl's body
		env, stderr string
	}{
		{"answers", `case "$*" in *api/token*) echo token-1;; *"token: token-1"*instance-id*) echo i-0123456789abcdef0;; *) exit 22;; esac`,
			"TRIBUTARY_HOST=i-0123456789abcdef0\n", ""},
		{"no token", `exit 22`, "", "tributary: no IMDSv2 token: TRIBUTARY_HOST unknown, the producer is not started\n"},
		{"no instance id", `case "$*" in *api/token*) echo token-1;; *) exit 22;; esac`, "",
			"tributary: IMDSv2 gave no instance id: TRIBUTARY_HOST unknown, the producer is not started\n"},
		{"not an instance id", `case "$*" in *api/token*) echo token-1;; *) echo '<html>error</html>';; esac`, "",
			"tributary: IMDSv2 gave a malformed instance id: TRIBUTARY_HOST unknown, the producer is not started\n"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "curl"), []byte("#!/bin/bash\n"+c.curl+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		envFile := filepath.Join(dir, "env")
		step := strings.ReplaceAll(ud[start:end+len(">> /etc/tributary-producer.env\n")], "/etc/tributary-producer.env", envFile)
		cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+step+"echo reached >> "+envFile+"\n")
		cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin"}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		got, _ := os.ReadFile(envFile)
		wantEnv, wantOK := c.env+"reached\n", c.stderr == ""
		if !wantOK {
			wantEnv = ""
		}
		if (err == nil) != wantOK || string(got) != wantEnv || stderr.String() != c.stderr {
			t.Errorf("%s: err %v, env file %q, stderr %q; want ok=%v, %q, %q", c.name, err, got, stderr.String(), wantOK, wantEnv, c.stderr)
		}
	}
}
