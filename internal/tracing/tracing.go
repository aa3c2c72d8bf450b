// Package tracing is keyward's OpenTelemetry adapter: it builds the tracer
// provider from the standard OTEL_* variables (off unless they ask for
// it), and decorates the authority's ports (store, limiter, bus) and its
// cache fills with spans. No span attribute holds a secret: spans carry
// operation names, counts and ids, never a token, a digest or a header.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// instrumentation names keyward's own spans (the tracer's scope).
const instrumentation = "github.com/keyward/keyward"

// Tracing is a tracer provider with the propagator requests are read
// with. A nil *Tracing means tracing is off.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	tracer     trace.Tracer
	shutdown   func(context.Context) error
}

var _ authority.Tracer = (*Tracing)(nil)

// New returns a Tracing over tp (tests pass one with a SpanRecorder),
// reading traceparent and baggage (W3C).
func New(tp trace.TracerProvider) *Tracing {
	return &Tracing{
		Provider:   tp,
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		tracer:     tp.Tracer(instrumentation),
		shutdown:   func(context.Context) error { return nil },
	}
}

// Enabled reports whether the environment asks for traces, and rejects
// what keyward cannot honour. Tracing is off unless OTEL_TRACES_EXPORTER
// is "otlp" or an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none keeps it off. Only the http/protobuf OTLP
// protocol is built in.
func Enabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	on := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	if exporters := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exporters != "" {
		on = false
		for _, e := range strings.Split(exporters, ",") {
			switch e = strings.TrimSpace(e); e {
			case "otlp":
				on = true
			case "none":
				return false, nil
			default:
				return false, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (want otlp or none)", e)
			}
		}
	}
	if !on {
		return false, nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol != "" && protocol != "http/protobuf" {
		return false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported (want http/protobuf)", protocol)
	}
	return true, nil
}

// FromEnv returns the Tracing the OTEL_* variables ask for, or nil when
// they ask for none (see Enabled). The exporter, sampler
// (OTEL_TRACES_SAMPLER), batching (OTEL_BSP_*) and resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) are the SDK's, configured
// by the SDK from the same variables; OTEL_PROPAGATORS may name
// tracecontext, baggage or none. Call Shutdown to flush the spans still
// buffered.
func FromEnv(ctx context.Context, version string) (*Tracing, error) {
	on, err := Enabled(os.Getenv)
	if err != nil || !on {
		return nil, err
	}
	prop, err := propagatorFromEnv(os.Getenv("OTEL_PROPAGATORS"))
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	// Our service name first, so OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES (detected after it) override it.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("keyward"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t := New(tp)
	t.Propagator = prop
	t.shutdown = tp.Shutdown
	return t, nil
}

func propagatorFromEnv(v string) (propagation.TextMapPropagator, error) {
	if strings.TrimSpace(v) == "" {
		v = "tracecontext,baggage" // the spec's default
	}
	var props []propagation.TextMapPropagator
	for _, name := range strings.Split(v, ",") {
		switch strings.TrimSpace(name) {
		case "tracecontext":
			props = append(props, propagation.TraceContext{})
		case "baggage":
			props = append(props, propagation.Baggage{})
		case "none":
			return propagation.NewCompositeTextMapPropagator(), nil
		default:
			return nil, fmt.Errorf("OTEL_PROPAGATORS: %q is not supported (want tracecontext, baggage or none)", name)
		}
	}
	return propagation.NewCompositeTextMapPropagator(props...), nil
}

// Shutdown exports the spans still buffered and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Start begins an internal span named name, a child of ctx's span
// (authority.Tracer).
func (t *Tracing) Start(ctx context.Context, name string) (context.Context, func(error)) {
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
	return ctx, func(err error) { end(span, err) }
}

func (t *Tracing) start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
}

// end finishes span, marking it failed with err's code (credential.Code,
// such as not_found or unavailable), never its message: a driver's error
// text may quote a value.
func end(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, string(credential.CodeOf(err)))
	}
	span.End()
}
