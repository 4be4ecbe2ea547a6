package noredirect

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A redirect comes back as itself: the host it names gets no request, and
// the client given keeps its own settings.
func TestARedirectIsAnsweredNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	api := httptest.NewServer(http.RedirectHandler(other.URL+"/v1", http.StatusTemporaryRedirect))
	defer api.Close()
	given := &http.Client{Timeout: 7 * time.Second}
	c := Client(given)
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/v1", nil)
	req.Header.Set("x-api-key", "secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || elsewhere.Load() != 0 {
		t.Errorf("status %d, %d requests to the host it named; want 307 and none", resp.StatusCode, elsewhere.Load())
	}
	if c.Timeout != given.Timeout || given.CheckRedirect != nil {
		t.Errorf("timeout %v (want the given client's %v); the given client changed: %v", c.Timeout, given.Timeout, given.CheckRedirect != nil)
	}
}
