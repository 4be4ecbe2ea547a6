package ingest

import "testing"

// The commands spell each mode in lower case with hyphens; every mode reads back.
func TestAuthFlags(t *testing.T) {
	want := map[Auth]string{AuthIAM: "iam", AuthAPIKey: "api-key", AuthNone: "none"}
	for _, a := range Auths {
		if a.Flag() != want[a] {
			t.Errorf("%s.Flag() = %q, want %q", a, a.Flag(), want[a])
		}
		if got, err := ParseAuthFlag(a.Flag()); err != nil || got != a {
			t.Errorf("ParseAuthFlag(%q) = %q, %v", a.Flag(), got, err)
		}
	}
	if _, err := ParseAuthFlag("IAM"); err == nil || err.Error() != `-auth must be one of iam, api-key, none, got "IAM"` {
		t.Errorf("ParseAuthFlag(IAM) error = %v", err)
	}
}
