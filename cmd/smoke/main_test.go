package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/fakes3"
)

// firehose copies what the fake API stored into gzipped objects of the fake
// S3, under the data prefix and UTC hour folders, like the real delivery
// stream; drop and dup change what it writes.
func firehose(ctx context.Context, api *fakeapi.API, store *fakes3.S3, drop, dup func(i int) bool) {
	delivered, n := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		recs := api.Events()
		if len(recs) == delivered {
			continue
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		for i := delivered; i < len(recs); i++ {
			if drop != nil && drop(i) {
				continue
			}
			zw.Write(recs[i])
			if dup != nil && dup(i) {
				zw.Write(recs[i])
			}
		}
		zw.Close()
		now := time.Now().UTC()
		n++
		store.Put("data-bucket", fmt.Sprintf("raw-data/%s/delivery-%d.gz", now.Format("2006/01/02/15"), n), buf.Bytes(), now)
		delivered = len(recs)
	}
}

func setup(t *testing.T, faults fakeapi.Faults, drop, dup func(int) bool) (string, *fakes3.S3) {
	t.Helper()
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		t.Setenv(k, v)
	}
	api := fakeapi.Start(faults)
	t.Cleanup(api.Close)
	store := fakes3.Start()
	t.Cleanup(store.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go firehose(ctx, api, store, drop, dup)
	// An old object that must not confuse the count.
	store.Put("data-bucket", "raw-data/2020/01/01/00/old.gz", []byte("not gzip"), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	outputs, _ := json.Marshal(map[string]map[string]string{
		"Tributary-PROD-Pipeline": {"IngestUrl": api.URL, "BucketName": "data-bucket", "DataPrefix": "raw-data/"},
		"Tributary-PROD-Producer": {"InstanceId": "i-0123"},
	})
	path := filepath.Join(t.TempDir(), "cdk-outputs.json")
	if err := os.WriteFile(path, outputs, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, store
}

func smokeArgs(outputs string, store *fakes3.S3, extra ...string) []string {
	return append([]string{"-outputs", outputs, "-count", "30", "-auth", "none", "-region", "us-east-1",
		"-s3-endpoint-url", store.URL, "-poll", "50ms", "-timeout", "5s"}, extra...)
}

func TestSmokeFindsEveryEvent(t *testing.T) {
	outputs, store := setup(t, fakeapi.Faults{ThrottleEvery: 4}, nil, func(i int) bool { return i == 3 })
	var out, errOut bytes.Buffer
	code := run(context.Background(), smokeArgs(outputs, store), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"smoke: sent 30 events", "found 30 of 30 events; 0 missing, 1 duplicated", "end-to-end latency"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSmokeFailsOnAMissingEvent(t *testing.T) {
	outputs, store := setup(t, fakeapi.Faults{}, func(i int) bool { return i == 7 }, nil)
	var out, errOut bytes.Buffer
	code := run(context.Background(), smokeArgs(outputs, store, "-timeout", "500ms"), &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "found 29 of 30 events; 1 missing, 0 duplicated") || !strings.Contains(out.String(), "missing: smoke-") {
		t.Errorf("exit %d, want 1 with the missing event named:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestSmokeFailsWhenTheAPIRejectsTheEvents(t *testing.T) {
	outputs, store := setup(t, fakeapi.Faults{APIKey: "right"}, nil, nil)
	var out, errOut bytes.Buffer
	code := run(context.Background(), smokeArgs(outputs, store, "-auth", "api-key", "-api-key", "wrong"), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "the API did not take the test events: 0 sent, 30 rejected, 0 unconfirmed; first reason: HTTP 403: Forbidden") {
		t.Errorf("exit %d, want 1 naming the rejection:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestSmokeOutputsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(v any) string {
		p := filepath.Join(dir, fmt.Sprint(time.Now().UnixNano(), ".json"))
		raw, _ := json.Marshal(v)
		os.WriteFile(p, raw, 0o644)
		return p
	}
	two := write(map[string]map[string]string{
		"A-PROD-Pipeline": {"IngestUrl": "https://a/v1", "BucketName": "a", "DataPrefix": "raw-data/"},
		"B-dev-Pipeline":  {"IngestUrl": "https://b/v1", "BucketName": "b", "DataPrefix": "events/"},
	})
	if _, err := readOutputs(two, ""); err == nil || !strings.Contains(err.Error(), "choose one with -stack") {
		t.Errorf("two pipelines without -stack: %v", err)
	}
	if o, err := readOutputs(two, "B-dev-Pipeline"); err != nil || o.BucketName != "b" || o.DataPrefix != "events/" {
		t.Errorf("-stack B-dev-Pipeline: %+v, %v", o, err)
	}
	old := write(map[string]map[string]string{"A": {"IngestUrl": "https://a/v1"}})
	if _, err := readOutputs(old, ""); err == nil || !strings.Contains(err.Error(), "lacks BucketName or DataPrefix") {
		t.Errorf("outputs without DataPrefix: %v", err)
	}
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"-outputs", filepath.Join(dir, "none.json")}, &bytes.Buffer{}, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "--outputs-file") {
		t.Errorf("missing outputs file: exit %d, %s", code, errOut.String())
	}
}
