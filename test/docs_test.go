package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// readDoc reads a page of the documentation, relative to the project folder.
func readDoc(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile("../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// docSection is the text under a heading of a page, up to the next heading
// of the same or a higher level.
func docSection(t *testing.T, page, heading string) string {
	t.Helper()
	level := strings.Index(heading, " ")
	i := strings.Index(page, "\n"+heading+"\n")
	if level < 1 || i < 0 {
		t.Fatalf("no heading %q", heading)
	}
	rest := page[i+len(heading)+2:]
	for _, line := range strings.SplitAfter(rest, "\n") {
		if n := len(line) - len(strings.TrimLeft(line, "#")); n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
			return rest[:strings.Index(rest, line)]
		}
	}
	return rest
}

// kept is what a production destroy keeps, by CloudFormation type: how many
// of that type the stacks retain and the words docs/operating.md lists them with.
type kept struct {
	count int
	doc   string
}

// docs/operating.md lists exactly what the destroy of a production stage
// keeps: every resource the synthesized stacks retain (DeletionPolicy
// Retain), no more, no less, with what it goes on costing; the synth's
// notice points there.
func TestDocsListWhatAProductionDestroyKeeps(t *testing.T) {
	section := docSection(t, readDoc(t, "docs/operating.md"), "### What a production destroy keeps")
	for _, c := range []struct {
		settings map[string]any
		want     map[string]kept
	}{
		{nil, map[string]kept{
			"AWS::S3::Bucket":          {3, "| the data bucket, its access-log bucket and the query-results bucket |"},
			"AWS::Kinesis::Stream":     {1, "| the Kinesis stream |"},
			"AWS::Logs::LogGroup":      {5, "| the log groups: the API's access and execution logs, Firehose's delivery errors (and its log stream there), the host's flow logs, the producer's log |"},
			"AWS::Logs::LogStream":     {1, "Firehose's delivery errors (and its log stream there)"},
			"AWS::IAM::Role":           {1, "| API Gateway's account logging role"},
			"AWS::ApiGateway::Account": {1, "| API Gateway's account logging role"},
		}},
		{map[string]any{"streamEncryption": "CUSTOMER_MANAGED"}, map[string]kept{
			"AWS::KMS::Key": {1, "| with `streamEncryption=CUSTOMER_MANAGED`, the stream's KMS key |"},
		}},
	} {
		got := map[string]int{}
		var ids []string
		for name, tpl := range synth(t, c.settings).templates {
			resources, _ := tpl["Resources"].(map[string]any)
			for id, r := range resources {
				r, _ := r.(map[string]any)
				if r["DeletionPolicy"] == "Retain" {
					got[fmt.Sprint(r["Type"])]++
					ids = append(ids, name+"/"+id)
				}
			}
		}
		sort.Strings(ids)
		t.Logf("%v retains %v", c.settings, ids)
		for typ, k := range c.want {
			if got[typ] != k.count {
				t.Errorf("%v: %d %s retained, want %d", c.settings, got[typ], typ, k.count)
			}
			if !strings.Contains(section, k.doc) {
				t.Errorf("docs/operating.md's \"What a production destroy keeps\" does not list %s: %q", typ, k.doc)
			}
		}
		if c.settings == nil {
			for typ := range got {
				if _, ok := c.want[typ]; !ok {
					t.Errorf("the stacks retain %d %s that docs/operating.md does not list", got[typ], typ)
				}
			}
		}
	}
	// The synth's one-line notice sends the reader to this section.
	if notice := synth(t, nil).settings.RetentionNotice(); !strings.Contains(notice, `see docs/operating.md, "What a production destroy keeps"`) {
		t.Errorf("the retention notice does not point at the section: %s", notice)
	}
	for _, cost := range []string{"$0.023 per GB-month", "about $11 a month", "$1 a month", "$0.03 per GB-month"} {
		if !strings.Contains(section, cost) {
			t.Errorf("docs/operating.md's \"What a production destroy keeps\" lacks what a kept resource costs: %s", cost)
		}
	}
}

// The README is a front door: short enough to read first.
func TestReadmeIsAFrontDoor(t *testing.T) {
	if n := len(readDoc(t, "README.md")); n > 12000 {
		t.Errorf("README.md is %d characters, at most 12,000: move detail to docs/", n)
	}
}

var (
	fence    = regexp.MustCompile("(?ms)^```.*?^```[^\n]*$")
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headings = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	notSlug  = regexp.MustCompile(`[^\p{L}\p{N}_ -]`)
)

// anchors are a page's heading anchors as GitHub makes them: lower case,
// punctuation dropped, spaces as hyphens, a repeated one numbered.
func anchors(page string) map[string]bool {
	out := map[string]bool{}
	for _, m := range headings.FindAllStringSubmatch(fence.ReplaceAllString(page, ""), -1) {
		a := strings.ReplaceAll(notSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), ""), " ", "-")
		for i, base := 1, a; out[a]; i++ {
			a = fmt.Sprintf("%s-%d", base, i)
		}
		out[a] = true
	}
	return out
}

// Every relative link of README.md and docs/*.md reaches a file, and every
// anchor a heading of its page; each page has a title and a link back to
// the README, which links every page.
func TestDocsLinksResolve(t *testing.T) {
	pages, _ := filepath.Glob("../docs/*.md")
	if len(pages) == 0 {
		t.Fatal("no docs/*.md")
	}
	pages = append(pages, "../README.md")
	readme := readDoc(t, "README.md")
	for _, path := range pages {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		page, name := string(raw), strings.TrimPrefix(path, "../")
		if name != "README.md" {
			if !strings.HasPrefix(page, "# ") || !strings.Contains(page, "](../README.md)") {
				t.Errorf("%s: no title, or no link back to the README", name)
			}
			if !strings.Contains(readme, "]("+name+")") {
				t.Errorf("README.md does not link %s", name)
			}
		}
		links := mdLink.FindAllStringSubmatch(fence.ReplaceAllString(page, ""), -1)
		for _, m := range links {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			dest := path
			if file != "" {
				dest = filepath.Join(filepath.Dir(path), file)
			}
			destRaw, err := os.ReadFile(dest)
			if err != nil {
				t.Errorf("%s: link %s: no such file", name, target)
				continue
			}
			if anchor != "" && !anchors(string(destRaw))[anchor] {
				t.Errorf("%s: link %s: %s has no heading with that anchor", name, target, dest)
			}
		}
	}
}

// quickStart is the README's quick start: the sh block right after the line
// <!-- quick-start -->, which CI runs as written.
func quickStart(t *testing.T) string {
	t.Helper()
	readme := readDoc(t, "README.md")
	const marker = "\n<!-- quick-start -->\n```sh\n"
	if n := strings.Count(readme, "<!-- quick-start -->"); n != 1 {
		t.Fatalf("README.md has %d <!-- quick-start --> markers, want 1", n)
	}
	_, block, ok := strings.Cut(readme, marker)
	if !ok {
		t.Fatal("README.md's <!-- quick-start --> line is not followed by a ```sh line")
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatal("README.md's quick-start block is not closed")
	}
	return block + "\n"
}

// The quick start's first command runs the pipeline locally, the next the
// tests; .ci/run runs exactly that block (through .ci/quick-start, which
// takes it from the README, runs each line and stops at the first failure).
func TestReadmeQuickStartRunsInCI(t *testing.T) {
	block := quickStart(t)
	var commands []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		if cmd, _, _ := strings.Cut(line, "#"); strings.TrimSpace(cmd) != "" {
			commands = append(commands, strings.TrimSpace(cmd))
		}
	}
	if len(commands) < 2 || commands[0] != "make local-check" || commands[1] != "make test" {
		t.Errorf("the quick start's commands are %q, want make local-check, then make test", commands)
	}

	printed, err := exec.Command("../.ci/quick-start", "-n", "../README.md").CombinedOutput()
	if err != nil || string(printed) != block {
		t.Errorf(".ci/quick-start -n gives %q (%v), want the README's block %q", printed, err, block)
	}

	// On a README of harmless commands: it runs them in order in the
	// README's folder, and stops, failing, at the first that fails.
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(readme, []byte("# x\n\n<!-- quick-start -->\n```sh\necho one > ran   # a comment\necho two >> ran\nfalse\necho three >> ran\n```\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("../.ci/quick-start", readme).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Errorf("a failing quick-start command: .ci/quick-start ended with %v, want a failure\n%s", err, out)
	}
	if ran, _ := os.ReadFile(filepath.Join(dir, "ran")); string(ran) != "one\ntwo\n" {
		t.Errorf("the quick start ran %q, want the commands before the failing one, in order", ran)
	}

	ci := readDoc(t, ".ci/run")
	if !regexp.MustCompile(`(?m)^\.ci/quick-start README\.md 2>&1 \| tee `).MatchString(ci) {
		t.Error(".ci/run does not run .ci/quick-start README.md")
	}
	if !strings.HasPrefix(ci, "#!/usr/bin/env bash\n") || !strings.Contains(ci, "\nset -euo pipefail\n") {
		t.Error(".ci/run must be bash with set -euo pipefail, so a failing quick start fails CI")
	}
}
