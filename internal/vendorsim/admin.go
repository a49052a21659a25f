package vendorsim

import (
	"encoding/json"
	"net/http"

	"github.com/friendsync/friendsync/event"
)

// The admin API (JSON, no authentication: bind the simulator to loopback):
//
//	GET  /admin/counters                       Counters
//	GET  /admin/state?vendor=&app=&from=[&to=]  one Friend (404 if none), or
//	                                           {"friends":{to:Friend},"truncated":bool}
//	GET  /admin/faults?vendor=                 the installed FaultSpec
//	POST /admin/faults?vendor=                 body FaultSpec; {} clears
//	POST /admin/friends                        {"vendor","app","from","to":[...]}
//	POST /admin/reset                          Reset
//
// Errors are {"error": "..."} with status 400, 404 or 405.

const adminListLimit = 10000

type adminError struct {
	Error string `json:"error"`
}

func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	bad := func(status int, msg string) { writeJSON(w, status, adminError{Error: msg}) }
	method := func(m string) bool {
		if r.Method != m {
			w.Header().Set("Allow", m)
			bad(http.StatusMethodNotAllowed, r.URL.Path+" accepts "+m+" only")
			return false
		}
		return true
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/admin/counters":
		if method(http.MethodGet) {
			writeJSON(w, http.StatusOK, s.Counters())
		}
	case "/admin/state":
		if !method(http.MethodGet) {
			return
		}
		v, app, from, to := event.Vendor(q.Get("vendor")), q.Get("app"), q.Get("from"), q.Get("to")
		if !v.Valid() || app == "" || from == "" {
			bad(http.StatusBadRequest, "vendor (tencent, volc, zego), app and from are required")
			return
		}
		if to != "" {
			f, ok := s.Friend(v, app, from, to)
			if !ok {
				bad(http.StatusNotFound, "no state for this friend")
				return
			}
			writeJSON(w, http.StatusOK, f)
			return
		}
		fs, more := s.Friends(v, app, from, adminListLimit)
		writeJSON(w, http.StatusOK, struct {
			Friends   map[string]Friend `json:"friends"`
			Truncated bool              `json:"truncated"`
		}{fs, more})
	case "/admin/faults":
		v := event.Vendor(q.Get("vendor"))
		if !v.Valid() {
			bad(http.StatusBadRequest, "vendor (tencent, volc, zego) is required")
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.Faults(v))
		case http.MethodPost:
			var spec FaultSpec
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&spec); err != nil {
				bad(http.StatusBadRequest, "body must be a FaultSpec: "+err.Error())
				return
			}
			if err := s.SetFaults(v, spec); err != nil {
				bad(http.StatusBadRequest, err.Error())
				return
			}
			writeJSON(w, http.StatusOK, s.Faults(v))
		default:
			w.Header().Set("Allow", "GET, POST")
			bad(http.StatusMethodNotAllowed, "/admin/faults accepts GET and POST")
		}
	case "/admin/friends":
		if !method(http.MethodPost) {
			return
		}
		var req struct {
			Vendor event.Vendor `json:"vendor"`
			App    string       `json:"app"`
			From   string       `json:"from"`
			To     []string     `json:"to"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
			bad(http.StatusBadRequest, "body must be {vendor, app, from, to: [...]}: "+err.Error())
			return
		}
		if err := s.AddFriends(req.Vendor, req.App, req.From, req.To...); err != nil {
			bad(http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Added int `json:"added"`
		}{len(req.To)})
	case "/admin/reset":
		if method(http.MethodPost) {
			s.Reset()
			writeJSON(w, http.StatusOK, struct{}{})
		}
	default:
		bad(http.StatusNotFound, "unknown admin path "+r.URL.Path)
	}
}
