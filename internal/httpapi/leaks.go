package httpapi

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// POST /v1/leaks takes leak reports in the format of GitHub's
// secret-scanning partner program
// (docs.github.com/en/code-security/secret-scanning/secret-scanning-partnership-program/secret-scanning-partner-program):
// a JSON array of {"token","type","url","source"}, its raw body signed
// with ECDSA P-256 and SHA-256 (an ASN.1 DER signature, base64, in
// Github-Public-Key-Signature) by the key that Github-Public-Key-Identifier
// names. The route holds no credential: only a signature by one of the
// configured public keys lets a report in; anything else is 401 and
// touches nothing. The answer is GitHub's feedback format, one entry per
// match, hashed so it repeats no secret:
// [{"token_hash": sha256 hex, "token_type", "label": "true_positive"|"false_positive"}].

// Leak report headers (Go canonicalizes them; GitHub sends them in any case).
const (
	LeakKeyIDHeader     = "Github-Public-Key-Identifier"
	LeakSignatureHeader = "Github-Public-Key-Signature"
)

// LeakReportConfig configures POST /v1/leaks.
type LeakReportConfig struct {
	// Keys are the reporter's public keys by key identifier. None: every
	// report is refused (401).
	Keys map[string]*ecdsa.PublicKey
	// Instance is the instance the reports are for; "" is the default
	// instance. Secrets of other instances are false positives.
	Instance string
	// Policy is what a found credential undergoes ("" is revoke).
	Policy authority.LeakPolicy
}

// ParseLeakReportKeys reads the reporter's public keys from a file's
// contents, in either of two forms:
//   - the JSON GitHub publishes at https://api.github.com/meta/public_keys/secret_scanning,
//     {"public_keys":[{"key_identifier","key" (PEM),…}]}, keys named by their key_identifier;
//   - PEM, one or more PUBLIC KEY blocks, each named by the hex SHA-256 of
//     its PEM text (how GitHub derives its identifiers).
//
// Every key must be an ECDSA P-256 public key.
func ParseLeakReportKeys(data []byte) (map[string]*ecdsa.PublicKey, error) {
	out := map[string]*ecdsa.PublicKey{}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		var doc struct {
			PublicKeys []struct {
				KeyIdentifier string `json:"key_identifier"`
				Key           string `json:"key"`
			} `json:"public_keys"`
		}
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, fmt.Errorf("read the public keys document: %w", err)
		}
		for i, k := range doc.PublicKeys {
			block, _ := pem.Decode([]byte(k.Key))
			if block == nil || k.KeyIdentifier == "" {
				return nil, fmt.Errorf("public_keys[%d]: no key_identifier or no PEM key", i)
			}
			pub, err := leakPublicKey(block)
			if err != nil {
				return nil, fmt.Errorf("public_keys[%d]: %w", i, err)
			}
			out[k.KeyIdentifier] = pub
		}
	} else {
		for rest := data; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			pub, err := leakPublicKey(block)
			if err != nil {
				return nil, err
			}
			id := sha256.Sum256(pem.EncodeToMemory(block))
			out[hex.EncodeToString(id[:])] = pub
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no public key found")
	}
	return out, nil
}

func leakPublicKey(block *pem.Block) (*ecdsa.PublicKey, error) {
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("a %q PEM block is not a public key", block.Type)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params().Name != "P-256" {
		return nil, errors.New("the key is not an ECDSA P-256 public key")
	}
	return pub, nil
}

// VerifyLeakSignature checks a report's signature headers against keys.
func VerifyLeakSignature(keys map[string]*ecdsa.PublicKey, keyID, signature string, body []byte) bool {
	pub, ok := keys[keyID]
	if !ok || keyID == "" {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) == 0 {
		return false
	}
	sum := sha256.Sum256(body)
	return ecdsa.VerifyASN1(pub, sum[:], sig)
}

type leakMatch struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

type leakFeedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

var errLeakSignature = credential.Errorf(credential.CodeUnauthenticated, "the report's signature is missing, invalid or by an unknown key")

func (n *native) reportLeaks(w http.ResponseWriter, r *http.Request) error {
	body, err := wire.Body(r)
	if err != nil {
		return err
	}
	if !VerifyLeakSignature(n.leaks.Keys, r.Header.Get(LeakKeyIDHeader), r.Header.Get(LeakSignatureHeader), body) {
		n.log.LogAttrs(r.Context(), slog.LevelWarn, "leak report refused", slog.String("reason", "signature"),
			slog.String("key_identifier", clipHeader(r.Header.Get(LeakKeyIDHeader))))
		return errLeakSignature
	}
	// Decoded leniently (unknown fields are ignored): the reporter's format
	// may grow, and a signed report must not bounce for it.
	var matches []leakMatch
	if err := json.Unmarshal(body, &matches); err != nil {
		return credential.Errorf(credential.CodeMalformed, "the body must be a JSON array of {token, type, url, source}")
	}
	reports := make([]authority.LeakReport, len(matches))
	for i, m := range matches {
		reports[i] = authority.LeakReport{Token: m.Token, Type: m.Type, URL: m.URL, Source: m.Source}
	}
	verdicts, err := n.auth.ReportLeaks(r.Context(), n.leaks.Instance, n.leaks.Policy, reports)
	if err != nil {
		return err
	}
	out := make([]leakFeedback, len(verdicts))
	found := 0
	for i, v := range verdicts {
		out[i] = leakFeedback{TokenHash: v.TokenHash, TokenType: v.Type, Label: "false_positive"}
		if v.Found {
			out[i].Label = "true_positive"
			found++
		}
	}
	n.log.LogAttrs(r.Context(), slog.LevelInfo, "leak report", slog.Int("matches", len(out)), slog.Int("found", found))
	wire.WriteJSON(w, http.StatusOK, out)
	return nil
}

// clipHeader bounds a header value written to the log.
func clipHeader(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}
