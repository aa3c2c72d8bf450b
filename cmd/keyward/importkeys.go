package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/authority"
)

// foreignKeyLine is one line of an import-keys file.
type foreignKeyLine struct {
	Format      string          `json:"format"`
	Hash        string          `json:"hash"`
	Start       string          `json:"start"`
	Prefix      string          `json:"prefix"`
	Subject     string          `json:"subject"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Scopes      []string        `json:"scopes"`
	Claims      json.RawMessage `json:"claims"`
	ExpiresAt   lineTime        `json:"expires_at"`
	CreatedAt   lineTime        `json:"created_at"`
	// ID is the other system's id of the key, for the operator's records;
	// keyward gives the key its own.
	ID string `json:"id"`
}

// lineTime is an RFC 3339 string or Unix milliseconds (Unkey's form).
type lineTime struct{ time.Time }

func (t *lineTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var ms int64
	if err := json.Unmarshal(b, &ms); err == nil {
		t.Time = time.UnixMilli(ms).UTC()
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("want an RFC 3339 time or Unix milliseconds")
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return errors.New("want an RFC 3339 time or Unix milliseconds")
	}
	t.Time = v
	return nil
}

// readForeignKeys reads JSON lines (blank lines skipped), naming the line
// of the first bad one. No hash is ever part of an error.
func readForeignKeys(r io.Reader, defaultFormat string) ([]authority.ForeignKey, error) {
	var keys []authority.ForeignKey
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var l foreignKeyLine
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("line %d: %s", line, jsonProblem(err))
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: more than one JSON object", line)
		}
		if l.Format == "" {
			l.Format = defaultFormat
		}
		keys = append(keys, authority.ForeignKey{
			Line: line, Format: authority.ForeignFormat(l.Format), Hash: l.Hash, Start: l.Start, Prefix: l.Prefix,
			Subject: l.Subject, Name: l.Name, Description: l.Description, Scopes: l.Scopes, Claims: l.Claims,
			ExpiresAt: l.ExpiresAt.Time, CreatedAt: l.CreatedAt.Time,
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("--from: no keys in the file")
	}
	return keys, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("not a JSON object (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be a %s", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "not a JSON object"
}

// parsePrefixes reads --prefix PREFIX=api_key[:TYPE] mappings.
func parsePrefixes(specs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range specs {
		prefix, target, ok := strings.Cut(s, "=")
		kind, typ, _ := strings.Cut(target, ":")
		if !ok || prefix == "" || kind != "api_key" {
			return nil, fmt.Errorf("--prefix %q: want FOREIGN_PREFIX=api_key or FOREIGN_PREFIX=api_key:TYPE (imported keys become API keys)", s)
		}
		if typ == "" {
			typ = authority.APIKeyDefaultType
		}
		out[prefix] = typ
	}
	return out, nil
}

// readHMACKey reads the foreign HMAC key from a file: raw bytes (one
// trailing newline dropped), hex or base64.
func readHMACKey(path, encoding string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--hmac-key-file: %w", err)
	}
	switch encoding {
	case "raw":
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	case "hex":
		if b, err = hex.DecodeString(string(bytes.TrimSpace(b))); err != nil {
			return nil, errors.New("--hmac-key-file: not hex")
		}
	case "base64":
		if b, err = base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b))); err != nil {
			return nil, errors.New("--hmac-key-file: not base64")
		}
	default:
		return nil, errors.New("--hmac-key-encoding: want raw, hex or base64")
	}
	if len(b) == 0 {
		return nil, errors.New("--hmac-key-file: the file is empty")
	}
	return b, nil
}

// importKeysLong is import-keys' help.
const importKeysLong = `Import API keys that another system stored only as hashes, one JSON object per line:

  {"format": "sha256", "hash": "<hex or base64>", "start": "sk_live_AbCd", "subject": "user_…", "name": "…"}

format is sha256 (the SHA-256 of the whole key, as hex or base64: Unkey's hash is the base64
form), hmac-sha256 (HMAC-SHA256 of the key under the key in --hmac-key-file) or bcrypt;
--format gives it to lines without one.
A bcrypt hash is salted and cannot be looked up, so a bcrypt line must carry start: the key's
first characters (at least 3 past its prefix, at most 32), as Unkey's start field; keys are
found by it and then checked with bcrypt (a presented key over bcrypt's 72 bytes never
matches, since bcrypt ignores the rest). Optional fields: prefix (else found from start),
description, scopes, claims, expires_at and created_at (RFC 3339 or Unix ms), id (ignored).
subject is a user_, org_ or mch_ id, as for any API key.

--prefix maps each foreign prefix to the API key type its keys get (sk_live_=api_key:live).
The keys then verify through POST /v1/verify and Clerk's /api_keys/verify like native API
keys. On a key's first successful verify its credential is re-keyed to keyward's own digest
(HMAC under the instance's keyring) and the foreign hash is deleted, in one transaction.

The whole file is one transaction: a bad line is an error naming it, and nothing is written.
A running server sees new keys within 30 seconds. Neither the hashes nor the HMAC key are ever
printed; the HMAC key is kept sealed under the keyring until the last key needing it is re-keyed.`

// importKeysFlags are import-keys' flags.
type importKeysFlags struct {
	from, instanceID, hmacKeyFile, hmacKeyEncoding, format string
	prefixes                                               []string
}

func newImportKeysCommand(cfg *storeConfig) *cobra.Command {
	var in importKeysFlags
	cmd := &cobra.Command{
		Use:   "import-keys --from FILE --prefix FOREIGN_PREFIX=api_key[:TYPE]",
		Short: "Import another system's API keys by their hashes; each is re-keyed to keyward's digest on its first verify",
		Long:  importKeysLong,
		Example: `  keyward import-keys --from unkey.jsonl --format sha256 --prefix sk_live_=api_key:live
  keyward import-keys --from legacy.jsonl --prefix key_=api_key --hmac-key-file /run/secrets/legacy-hmac --hmac-key-encoding hex`,
		Args: cobra.NoArgs,
		RunE: cfg.withAuthority(func(cmd *cobra.Command, args []string, auth *authority.Authority) error {
			return in.run(cmd, auth)
		}),
	}
	cmd.Flags().StringVar(&in.from, "from", "", "JSON lines of foreign keys (see above)")
	cmd.Flags().StringVar(&in.instanceID, "instance", "", "the instance the keys join (ins_…; default: the one created at first start)")
	cmd.Flags().StringArrayVar(&in.prefixes, "prefix", nil, "FOREIGN_PREFIX=api_key[:TYPE]; repeat for each prefix")
	cmd.Flags().StringVar(&in.format, "format", "", "the format of lines without one (sha256 for an Unkey export)")
	cmd.Flags().StringVar(&in.hmacKeyFile, "hmac-key-file", "", "a file holding the other system's HMAC key, for hmac-sha256 lines")
	cmd.Flags().StringVar(&in.hmacKeyEncoding, "hmac-key-encoding", "raw", "how --hmac-key-file holds the key: raw (one trailing newline dropped), hex or base64")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

// run reads the file and imports its keys in one transaction.
func (in importKeysFlags) run(cmd *cobra.Command, auth *authority.Authority) error {
	ctx := cmd.Context()
	mapping, err := parsePrefixes(in.prefixes)
	if err != nil {
		return usageErrorf("%s", err)
	}
	key, err := readHMACKey(in.hmacKeyFile, in.hmacKeyEncoding)
	if err != nil {
		return err
	}
	f, err := os.Open(in.from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer f.Close()
	keys, err := readForeignKeys(f, in.format)
	if err != nil {
		return err
	}
	if in.instanceID == "" {
		if in.instanceID, err = auth.DefaultInstanceID(ctx); err != nil {
			return fmt.Errorf("--instance: %w", err)
		}
	}
	res, err := auth.ImportForeignKeys(ctx, authority.ImportForeignKeysInput{InstanceID: in.instanceID, Keys: keys, Prefixes: mapping, HMACKey: key})
	clear(key)
	if err != nil {
		return err
	}
	formats := make([]string, 0, len(res.ByFormat))
	for f, n := range res.ByFormat {
		formats = append(formats, fmt.Sprintf("%s %d", f, n))
	}
	sort.Strings(formats)
	fmt.Fprintf(cmd.OutOrStdout(), "imported %d keys into %s (%s)\n", res.Imported, in.instanceID, strings.Join(formats, ", "))
	return nil
}
