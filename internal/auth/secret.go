package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// The two forms of a SECRET field, by their prefixes.
const (
	tokenPrefix = "token:sha256:"
	userPrefix  = "user:"
)

// passwordCost is HashPassword's bcrypt cost: about 50 ms a hash on
// today's machines, paid once per user and password by Authenticate.
const passwordCost = 10

// maxRoleLen is the longest name PostgreSQL keeps whole (NAMEDATALEN-1);
// a longer one would be cut short and name another role.
const maxRoleLen = 63

// emptyToken is the SHA-256 of the empty token, which no request can
// send.
var emptyToken = sha256.Sum256(nil)

// HashToken returns the SECRET field of a credential with token: the
// token's SHA-256, as token:sha256:<64 hex digits>.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return tokenPrefix + hex.EncodeToString(h[:])
}

// HashPassword returns the SECRET field of a 1.x user with password:
// user:<user>:<bcrypt hash>, at cost 10. The user name may hold any
// character but ':', whitespace and control characters; the password
// must not be empty, nor longer than bcrypt's 72 bytes.
func HashPassword(user, password string) (string, error) {
	if err := validUser(user); err != nil {
		return "", err
	}
	if password == "" {
		return "", errors.New("empty password")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), passwordCost)
	if err != nil {
		return "", err
	}
	return userPrefix + user + ":" + string(hash), nil
}

// secret is a parsed SECRET field: a token's SHA-256, or a user (not
// empty) and its bcrypt hash.
type secret struct {
	token [sha256.Size]byte
	user  string
	hash  []byte
}

// parseSecret parses a SECRET field. Its errors never hold the field's
// text; on error the secret is the zero secret.
func parseSecret(field string) (secret, error) {
	switch {
	case strings.HasPrefix(field, tokenPrefix):
		var s secret
		digits := field[len(tokenPrefix):]
		if len(digits) != hex.EncodedLen(sha256.Size) {
			return secret{}, errors.New("want token:sha256: and 64 hex digits")
		}
		if _, err := hex.Decode(s.token[:], []byte(digits)); err != nil {
			return secret{}, errors.New("want token:sha256: and 64 hex digits")
		}
		if s.token == emptyToken {
			return secret{}, errors.New("the SHA-256 of the empty token")
		}
		return s, nil
	case strings.HasPrefix(field, userPrefix):
		name, hash, ok := strings.Cut(field[len(userPrefix):], ":")
		if !ok {
			return secret{}, errors.New("want user:NAME:HASH")
		}
		if err := validUser(name); err != nil {
			return secret{}, err
		}
		if err := validBcrypt(hash); err != nil {
			return secret{}, err
		}
		return secret{user: name, hash: []byte(hash)}, nil
	}
	return secret{}, errors.New("want token:sha256:HEX or user:NAME:HASH")
}

// validUser checks a 1.x user name: it cannot hold ':', which ends it in
// a SECRET field, in basic auth and in InfluxDB 1.8's "Token user:pass".
func validUser(name string) error {
	if name == "" {
		return errors.New("empty user name")
	}
	if !utf8.ValidString(name) {
		return errors.New("user name: not UTF-8")
	}
	for _, r := range name {
		if r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return errors.New("user name: holds ':', whitespace or a control character")
		}
	}
	return nil
}

// validBcrypt checks a bcrypt hash as htpasswd -B and HashPassword make
// them: $2a$, $2b$ or $2y$, a two-digit cost, $, then 53 characters of
// bcrypt's base64.
func validBcrypt(hash string) error {
	const size = 60
	bad := errors.New("want a bcrypt hash: $2a$, $2b$ or $2y$, the cost, $ and 53 characters")
	if len(hash) != size || hash[0] != '$' || hash[1] != '2' || strings.IndexByte("aby", hash[2]) < 0 || hash[3] != '$' || hash[6] != '$' {
		return bad
	}
	for i := 7; i < size; i++ {
		b := hash[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '/') {
			return bad
		}
	}
	cost, err := strconv.Atoi(hash[4:6])
	if err != nil || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("bcrypt cost: want %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return bad
	}
	return nil
}

// parsePatterns parses the comma-separated patterns of write= or query=.
func parsePatterns(value string) ([]string, error) {
	patterns := strings.Split(value, ",")
	for i, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("pattern %d is empty", i+1)
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("pattern %d: %w", i+1, err)
		}
	}
	return patterns, nil
}

// validRole checks a PostgreSQL role name, which pginflux quotes: what
// matters is that PostgreSQL keeps it whole.
func validRole(role string) error {
	if role == "" || len(role) > maxRoleLen || !utf8.ValidString(role) {
		return fmt.Errorf("want 1 to %d bytes of UTF-8", maxRoleLen)
	}
	for _, r := range role {
		if unicode.IsControl(r) {
			return errors.New("holds a control character")
		}
	}
	return nil
}

// parseMaxWrites parses the value of max-writes=.
func parseMaxWrites(value string) (int, error) {
	n, err := strconv.ParseInt(value, 10, 32)
	if err != nil || n < 1 {
		return 0, errors.New("want a whole number from 1")
	}
	return int(n), nil
}
