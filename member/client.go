package member

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx/alliance"
)

// APIClient talks to a running member's local API, so that the CLI stays
// thin.
type APIClient struct {
	base  string
	token string
	hc    *http.Client
}

// Client reads a running member's API address and token from its data
// directory.
func Client(dir string) (*APIClient, error) {
	addr, err := os.ReadFile(filepath.Join(dir, fileAPIAddr))
	if err != nil {
		return nil, fmt.Errorf("member: %w (is `phalanx up --data %s` running?)", err, dir)
	}
	tok, err := os.ReadFile(filepath.Join(dir, fileAPIToken))
	if err != nil {
		return nil, fmt.Errorf("member: %w (is %s a member's data directory?)", err, dir)
	}
	return &APIClient{
		base:  "http://" + strings.TrimSpace(string(addr)),
		token: strings.TrimSpace(string(tok)),
		// Longer than a drill's wait.
		hc: &http.Client{Timeout: drillWait + 10*time.Second},
	}, nil
}

// do sends one request and decodes a JSON answer into out.
func (c *APIClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("member: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("member: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("member: %w (is `phalanx up` running?)", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("member: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("member: %s", e.Error)
		}
		return fmt.Errorf("member: %s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("member: %s %s: %w", method, path, err)
	}
	return nil
}

// Health is GET /v1/health.
func (c *APIClient) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
}

// Decisions lists the member's decisions.
func (c *APIClient) Decisions(ctx context.Context) ([]DecisionView, error) {
	return c.DecisionsWhere(ctx, DecisionQuery{})
}

// DecisionQuery filters GET /v1/decisions: every field given must match.
type DecisionQuery struct {
	Value    string // decisions overlapping this address or range
	Type     string // ban, captcha or throttle
	Origin   string // local, alliance, manual, import:crowdsec, import:fail2ban
	Scenario string
	Limit    int // at most this many; 0: all
}

// DecisionsWhere lists the decisions in force that match q.
func (c *APIClient) DecisionsWhere(ctx context.Context, q DecisionQuery) ([]DecisionView, error) {
	v := url.Values{}
	for k, s := range map[string]string{"value": q.Value, "type": q.Type, "origin": q.Origin, "scenario": q.Scenario} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/decisions"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var ds []DecisionView
	return ds, c.do(ctx, http.MethodGet, path, nil, &ds)
}

// AddDecision publishes a manual decision.
func (c *APIClient) AddDecision(ctx context.Context, req DecisionRequest) (Published, error) {
	var p Published
	return p, c.do(ctx, http.MethodPost, "/v1/decisions", req, &p)
}

// DeleteDecision publishes a lift of value (an address or CIDR).
func (c *APIClient) DeleteDecision(ctx context.Context, value, reason string) (Published, error) {
	var p Published
	q := url.Values{"value": {value}}
	if reason != "" {
		q.Set("reason", reason)
	}
	return p, c.do(ctx, http.MethodDelete, "/v1/decisions?"+q.Encode(), nil, &p)
}

// Members lists members and protected parties as the fold knows them.
func (c *APIClient) Members(ctx context.Context) ([]alliance.MemberState, error) {
	var ms []alliance.MemberState
	return ms, c.do(ctx, http.MethodGet, "/v1/members", nil, &ms)
}

// Charter returns the charter in force, explained and as data.
func (c *APIClient) Charter(ctx context.Context) (CharterView, error) {
	var v CharterView
	return v, c.do(ctx, http.MethodGet, "/v1/charter", nil, &v)
}

// StartCeasefire publishes a ceasefire.
func (c *APIClient) StartCeasefire(ctx context.Context, req CeasefireRequest) (CeasefireStarted, error) {
	var s CeasefireStarted
	return s, c.do(ctx, http.MethodPost, "/v1/ceasefire", req, &s)
}

// EndCeasefire ends a ceasefire early.
func (c *APIClient) EndCeasefire(ctx context.Context, id string) (Published, error) {
	if id == "" {
		return Published{}, errors.New("member: give the ceasefire's id")
	}
	var p Published
	return p, c.do(ctx, http.MethodDelete, "/v1/ceasefire?"+url.Values{"id": {id}}.Encode(), nil, &p)
}

// Drill runs a drill and returns each member's time to protect.
func (c *APIClient) Drill(ctx context.Context) (DrillResult, error) {
	var r DrillResult
	return r, c.do(ctx, http.MethodPost, "/v1/drill", nil, &r)
}
