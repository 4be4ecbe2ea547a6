// Package noredirect keeps a signed request, and the credentials it
// carries, on the endpoint it was meant for. It is plain Go, for the
// producer's API client and its CloudWatch publishers alike.
package noredirect

import "net/http"

// Client is hc (or a default client) that answers a redirect with the 3xx
// itself. Go's client follows redirects and forwards most headers,
// x-api-key and X-Amz-Security-Token among them: the request would be
// sent, with its credentials, to whatever host the answer names, and that
// host's answer taken for the endpoint's.
func Client(hc *http.Client) *http.Client {
	c := http.Client{}
	if hc != nil {
		c = *hc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}
