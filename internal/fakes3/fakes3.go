// Package fakes3 is a local stand-in for the two S3 calls the smoke test
// makes, ListObjectsV2 and GetObject (path-style), for tests without AWS.
package fakes3

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// S3 is a running fake.
type S3 struct {
	URL     string
	srv     *httptest.Server
	mu      sync.Mutex
	objects map[string]object // "bucket/key"
}

type object struct {
	body     []byte
	modified time.Time
}

// Start starts a fake on loopback; Close stops it.
func Start() *S3 {
	s := &S3{objects: map[string]object{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *S3) Close() { s.srv.Close() }

// Put stores an object, as Firehose would.
func (s *S3) Put(bucket, key string, body []byte, modified time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[bucket+"/"+key] = object{body: body, modified: modified.UTC()}
}

type listResult struct {
	XMLName     xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name        string
	Prefix      string
	KeyCount    int
	MaxKeys     int
	IsTruncated bool
	Contents    []content
}

type content struct {
	Key          string
	LastModified string
	ETag         string
	Size         int
	StorageClass string
}

func (s *S3) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if key == "" && r.URL.Query().Get("list-type") == "2" {
		prefix := r.URL.Query().Get("prefix")
		res := listResult{Name: bucket, Prefix: prefix, MaxKeys: 1000}
		for k, o := range s.objects {
			b, objKey, _ := strings.Cut(k, "/")
			if b == bucket && strings.HasPrefix(objKey, prefix) {
				res.Contents = append(res.Contents, content{Key: objKey, LastModified: o.modified.Format("2006-01-02T15:04:05.000Z"),
					ETag: `"etag"`, Size: len(o.body), StorageClass: "STANDARD"})
			}
		}
		sort.Slice(res.Contents, func(i, j int) bool { return res.Contents[i].Key < res.Contents[j].Key })
		res.KeyCount = len(res.Contents)
		w.Header().Set("Content-Type", "application/xml")
		_ = xml.NewEncoder(w).Encode(res)
		return
	}
	o, ok := s.objects[bucket+"/"+key]
	if !ok {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`))
		return
	}
	w.Header().Set("Last-Modified", o.modified.Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(o.body)
}
