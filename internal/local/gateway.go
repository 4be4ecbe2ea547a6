package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
)

// gateway is what API Gateway does before the integration, answering with
// the synthesized gateway responses: only the stage's two paths exist,
// bodies over 10 MB are refused, the stage's rate limit throttles, a
// Content-Type other than JSON is refused, and the body is validated
// against the method's request model (the event schema when set), as the
// request validator does. What passes goes to the API (the mapping
// templates' behaviour).
type gateway struct {
	cfg     *Config
	api     http.Handler
	bucket  *tokenBucket
	schemas map[string]*jsonschema.Schema // by path below the stage
}

const maxBody = 10 << 20 // API Gateway's payload limit

func newGateway(cfg *Config, api http.Handler) (*gateway, error) {
	g := &gateway{cfg: cfg, api: api, bucket: newTokenBucket(cfg.RateLimit, cfg.Burst), schemas: map[string]*jsonschema.Schema{}}
	for path, raw := range cfg.Schemas {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("the request model of %s: %w", path, err)
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft4)
		if err := c.AddResource("model.json", doc); err != nil {
			return nil, err
		}
		if g.schemas[path], err = c.Compile("model.json"); err != nil {
			return nil, fmt.Errorf("the request model of %s: %w", path, err)
		}
	}
	return g, nil
}

// respond answers with a gateway response of the template: its status and
// its body, with $context.error.* filled in as API Gateway does.
func (g *gateway) respond(w http.ResponseWriter, typ, message, validation string) {
	gr, ok := g.cfg.GatewayResponses[typ]
	if !ok {
		gr = g.cfg.GatewayResponses["DEFAULT_4XX"]
	}
	status := gr.Status
	if status == 0 {
		status = map[string]int{"MISSING_AUTHENTICATION_TOKEN": 403, "INVALID_API_KEY": 403, "BAD_REQUEST_BODY": 400,
			"UNSUPPORTED_MEDIA_TYPE": 415, "REQUEST_TOO_LARGE": 413, "THROTTLED": 429}[typ]
	}
	quoted, _ := json.Marshal(message)
	escaped, _ := json.Marshal(validation)
	body := strings.NewReplacer("$context.error.messageString", string(quoted),
		"$context.error.validationErrorString", string(escaped[1:len(escaped)-1])).Replace(gr.Template)
	if body == "" {
		body = `{"message":` + string(quoted) + `}`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stage := "/" + g.cfg.Stage
	path := strings.TrimPrefix(r.URL.Path, stage)
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, stage+"/") || (path != ingest.EventPath && path != ingest.BatchPath) {
		g.respond(w, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", "")
		return
	}
	if !g.bucket.take() {
		g.respond(w, "THROTTLED", "Too Many Requests", "")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		g.respond(w, "BAD_REQUEST_BODY", "Invalid request body", err.Error())
		return
	}
	if len(body) > maxBody {
		g.respond(w, "REQUEST_TOO_LARGE", "Request Too Long", "")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		g.respond(w, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type", "")
		return
	}
	if schema := g.schemas[path]; schema != nil {
		plain, err := fakeapi.Decode(r.Header.Get("Content-Encoding"), bytes.NewReader(body))
		if err != nil {
			g.respond(w, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type", "")
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(plain))
		if err != nil {
			g.respond(w, "BAD_REQUEST_BODY", "Invalid request body", "[Invalid JSON: "+err.Error()+"]")
			return
		}
		if err := schema.Validate(doc); err != nil {
			g.respond(w, "BAD_REQUEST_BODY", "Invalid request body", "["+oneLine(err)+"]")
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	g.api.ServeHTTP(w, r)
}

// oneLine is a validation error as one line, without the validator's
// preamble (API Gateway's own wording is its Java validator's, which the
// local run does not copy).
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	return preamble.ReplaceAllString(s, "")
}

var preamble = regexp.MustCompile(`jsonschema validation failed with '[^']*' - `)

// tokenBucket is the stage's throttle: rate per second, burst at once.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

func (b *tokenBucket) take() bool {
	if b.rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
