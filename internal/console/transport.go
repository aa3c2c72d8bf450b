package console

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// originalKey is the context key of the browser's request, which the
// in-process transport reads the client's address and TLS state from.
type originalKey struct{}

// inProcess is an http.RoundTripper that serves each request with the
// API's handler directly. The request carries the browser request's
// remote address, TLS state and forwarding headers, so the API sees the
// operator's address (for its audit events and its failed-authentication
// throttle) and its client-certificate rule applies as to any caller.
type inProcess struct{ api http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.RequestURI = r.URL.RequestURI()
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if orig, ok := req.Context().Value(originalKey{}).(*http.Request); ok {
		r.RemoteAddr = orig.RemoteAddr
		r.TLS = orig.TLS
		r.Host = orig.Host
		for _, h := range []string{"X-Forwarded-For", "X-Real-Ip"} {
			if v, ok := orig.Header[h]; ok {
				r.Header[h] = v
			}
		}
	} else {
		r.RemoteAddr = "127.0.0.1:0"
	}
	rec := &recorder{header: http.Header{}}
	t.api.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(rec.status) + " " + http.StatusText(rec.status),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// recorder is the http.ResponseWriter the API writes an in-process answer
// to.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

func (w *recorder) Flush() {}
