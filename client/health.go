package client

import (
	"context"
	"net/http"
)

// Ready reports whether the server is ready to serve (GET /readyz, no
// credential): nil when it answers 200, else an *APIError (503 while its
// store is unreachable, network_error when it does not answer). It asks
// once, never retrying, so a health check sees the state of now.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/readyz", noAuth: true}, nil)
}
