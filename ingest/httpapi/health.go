package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// healthRoutes serves the probes: pginflux's own (/healthz, /readyz, plain
// text for orchestrators) and InfluxDB's (/ping, /health, /ready, which
// client libraries, the influx CLIs and load balancers call). A GET
// pattern answers HEAD too.
func (s *Server) healthRoutes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /ping", s.ping)
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /ready", s.ready)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			text(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	text(w, http.StatusOK, "ok")
}

// ping answers as InfluxDB 1.x and 2.x do, so that clients checking for
// an InfluxDB at startup go on: 204 (the version headers are on every
// answer), or, with verbose set to anything but "0" or "false" (1.x's
// rule), 200 with the version in JSON. It says nothing of PostgreSQL:
// /health and /ready do.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("verbose"); v != "" && v != "0" && v != "false" {
		writeJSON(w, r, http.StatusOK, map[string]string{"version": "pginflux-" + s.cfg.Version})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// healthCheck is InfluxDB 2's HealthCheck: the answer of /health, and of
// each of its checks.
type healthCheck struct {
	Name    string        `json:"name"`
	Message string        `json:"message,omitempty"`
	Status  string        `json:"status"` // "pass" or "fail"
	Checks  []healthCheck `json:"checks"`
	Version string        `json:"version,omitempty"`
	Commit  string        `json:"commit,omitempty"`
}

// health answers /health as InfluxDB 2 does (200, status "pass"), and
// with 503, status "fail" and the reason while a check fails (the answer
// InfluxDB 2's API gives an unhealthy instance), each check named in
// "checks".
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	hc := healthCheck{Name: "pginflux", Status: "pass", Message: "ready for writes; the data is queried in PostgreSQL",
		Checks: []healthCheck{}, Version: s.cfg.Version, Commit: s.cfg.Commit}
	var failed []string
	for _, c := range s.cfg.Checks {
		one := healthCheck{Name: c.Name, Status: "pass", Checks: []healthCheck{}}
		if err := c.Check(r.Context()); err != nil {
			one.Status, one.Message = "fail", err.Error()
			failed = append(failed, c.Name+": "+err.Error())
		}
		hc.Checks = append(hc.Checks, one)
	}
	code := http.StatusOK
	if len(failed) > 0 {
		hc.Status, hc.Message = "fail", strings.Join(failed, "; ")
		code = http.StatusServiceUnavailable
		s.log.Debug("health check failed", "request_id", requestID(r), "reason", hc.Message)
	}
	writeJSON(w, r, code, hc)
}

// ready answers /ready as InfluxDB 2 does, {"status": "ready", "started":
// ..., "up": ...}, while pginflux is ready (as /readyz says); otherwise
// 503 with an error in InfluxDB 2's shape, which client libraries' Ready
// return as an error carrying the reason.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			s.fail(w, r, apiV2, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	writeJSON(w, r, http.StatusOK, struct {
		Status  string    `json:"status"`
		Started time.Time `json:"started"`
		Up      string    `json:"up"`
	}{"ready", s.started, time.Since(s.started).String()})
}

// writeJSON answers with v in JSON (no body to HEAD).
func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, strings.TrimRight(msg, "\n"))
}
