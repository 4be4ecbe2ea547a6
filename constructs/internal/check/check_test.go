package check

import "testing"

func TestMessagesNameSettingValueAndAllowed(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{IntRange("shardCount", 0, 1, 500), "shardCount: invalid value 0; allowed: an integer from 1 to 500"},
		{OneOf("streamMode", "FAST", "PROVISIONED", "ON_DEMAND"), `streamMode: invalid value "FAST"; allowed: one of ["PROVISIONED" "ON_DEMAND"]`},
		{Invalid("dataPrefix", "", "a prefix ending in /"), `dataPrefix: invalid value ""; allowed: a prefix ending in /`},
	}
	for _, c := range cases {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("got %v, want %q", c.err, c.want)
		}
	}
	if IntRange("x", 1, 1, 1) != nil || OneOf("x", "a", "a") != nil {
		t.Error("an allowed value was rejected")
	}
}
