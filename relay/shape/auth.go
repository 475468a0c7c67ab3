package shape

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Auth kinds.
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
	AuthOAuth2 = "oauth2"
)

// Auth is how a target wants requests to prove who sends them. Kind ""
// means none. Username and Password are read for basic, Token for bearer,
// and the rest for oauth2 (client credentials).
type Auth struct {
	Kind               string
	Username, Password string
	Token              string
	TokenURL           string
	ClientID           string
	ClientSecret       string
	Scopes             []string
}

// header is the Authorization value of basic and bearer auth, "" for the
// other kinds.
func (a Auth) header() string {
	switch a.Kind {
	case AuthBasic:
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password))
	case AuthBearer:
		return "Bearer " + a.Token
	}
	return ""
}

// Tokens holds the OAuth2 client-credentials token of one target: fetched
// when first needed, kept until it expires, and fetched again when a
// target refuses it. Concurrent callers share one fetch. It is safe for
// concurrent use; the zero value is not usable, see NewTokens.
type Tokens struct {
	cfg    clientcredentials.Config
	client *http.Client

	mu  sync.Mutex
	tok *oauth2.Token
}

// NewTokens returns the token cache of auth (kind oauth2), fetching tokens
// with client (nil: http.DefaultClient).
func NewTokens(auth Auth, client *http.Client) *Tokens {
	if client == nil {
		client = http.DefaultClient
	}
	return &Tokens{
		cfg: clientcredentials.Config{
			ClientID:     auth.ClientID,
			ClientSecret: auth.ClientSecret,
			TokenURL:     auth.TokenURL,
			Scopes:       auth.Scopes,
		},
		client: client,
	}
}

// Token returns a valid access token. refused, when not "", is a token
// that the target has just refused (401): unless another caller has
// replaced it meanwhile, a new one is fetched.
func (t *Tokens) Token(ctx context.Context, refused string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != nil && t.tok.Valid() && t.tok.AccessToken != refused {
		return t.tok.AccessToken, nil
	}
	tok, err := t.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, t.client))
	if err != nil {
		return "", fmt.Errorf("oauth2 token from %s: %w", t.cfg.TokenURL, err)
	}
	t.tok = tok
	return tok.AccessToken, nil
}
