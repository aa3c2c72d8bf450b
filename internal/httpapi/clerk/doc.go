// Package clerk speaks Clerk's Backend API wire protocol for machines (and,
// later, M2M and actor tokens), so Clerk's own SDKs work against keyward
// with the base URL http://host:port/clerk/v1.
//
// It decodes Clerk's requests, calls the authority, and renders Clerk's
// objects and its error envelope {errors:[{code,message,long_message,meta}],
// clerk_trace_id}. It holds no rules of its own beyond wire shapes.
package clerk
