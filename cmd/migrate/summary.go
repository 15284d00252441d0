package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// writeReport prints the per-target summary of up, down or tenant: every
// control/shared target, each premium schema that changed, failed or was
// skipped by name (with its error), and the already-current ones as a count.
func writeReport(w io.Writer, rep *tenancy.Report) {
	var premium, databases []tenancy.TargetResult
	for _, r := range rep.Results {
		switch r.Kind {
		case tenancy.KindControl:
			fmt.Fprintf(w, "control plane  %-10s %s%s\n", r.Schema, describe(r), onCell(r.Cell))
		case tenancy.KindShared:
			fmt.Fprintf(w, "shared         %-10s %s%s\n", r.Schema, describe(r), onCell(r.Cell))
		case tenancy.KindDatabase:
			databases = append(databases, r)
		default:
			premium = append(premium, r)
		}
	}
	verb := "migrated"
	if rep.Op == "down" {
		verb = "reverted"
	}
	defer writeDatabases(w, databases, verb)
	if len(premium) > 0 || rep.Op != "tenant" {
		counts := map[tenancy.Outcome]int{}
		for _, r := range premium {
			counts[r.Outcome]++
		}
		fmt.Fprintf(w, "premium        %d schemas: %d %s, %d failed, %d already current, %d skipped\n",
			len(premium), counts[tenancy.Migrated], verb, counts[tenancy.Failed], counts[tenancy.Current], counts[tenancy.Skipped])
	}
	for _, r := range premium {
		if r.Outcome == tenancy.Current && r.Note == "" {
			continue
		}
		label := map[tenancy.Outcome]string{tenancy.Migrated: verb, tenancy.Failed: "FAILED",
			tenancy.Current: "current", tenancy.Skipped: "skipped"}[r.Outcome]
		fmt.Fprintf(w, "  %-9s %s (tenant %s, %s): %s\n", label, r.Schema, r.Identifier, r.TenantID, describe(r))
	}
	for _, c := range rep.Citus {
		fmt.Fprintf(w, "citus          %s\n", c)
	}
	switch {
	case !rep.OK():
		fmt.Fprintf(w, "FAILED: %d failed, %d skipped of %d targets (%s)\n",
			rep.Count(tenancy.Failed), rep.Count(tenancy.Skipped), len(rep.Results), rep.Duration.Round(time.Millisecond))
	case rep.NothingToDo():
		fmt.Fprintf(w, "nothing to do: all %d targets already current (control %d, tenant %d) in %s\n",
			len(rep.Results), rep.LatestControl, rep.LatestTenant, rep.Duration.Round(time.Millisecond))
	default:
		fmt.Fprintf(w, "ok: %d targets changed, %d already current (%s)\n",
			rep.Count(tenancy.Migrated), rep.Count(tenancy.Current), rep.Duration.Round(time.Millisecond))
	}
}

// onCell names a cell other than the default in a summary line.
func onCell(cell string) string {
	if cell == "" || cell == tenancy.DefaultCell {
		return ""
	}
	return " [cell " + cell + "]"
}

// writeDatabases summarises tenant databases (and cell templates) like premium schemas.
func writeDatabases(w io.Writer, dbs []tenancy.TargetResult, verb string) {
	if len(dbs) == 0 {
		return
	}
	counts := map[tenancy.Outcome]int{}
	for _, r := range dbs {
		counts[r.Outcome]++
	}
	fmt.Fprintf(w, "databases      %d (tenant databases and cell templates): %d %s, %d failed, %d already current, %d skipped\n",
		len(dbs), counts[tenancy.Migrated], verb, counts[tenancy.Failed], counts[tenancy.Current], counts[tenancy.Skipped])
	for _, r := range dbs {
		if r.Outcome == tenancy.Current && r.Note == "" {
			continue
		}
		label := map[tenancy.Outcome]string{tenancy.Migrated: verb, tenancy.Failed: "FAILED",
			tenancy.Current: "current", tenancy.Skipped: "skipped"}[r.Outcome]
		who := "template"
		if r.Identifier != "" {
			who = "tenant " + r.Identifier
		}
		fmt.Fprintf(w, "  %-9s database %s (%s)%s: %s\n", label, r.Database, who, onCell(r.Cell), describe(r))
	}
}

type jsonTarget struct {
	Cell       string  `json:"cell,omitempty"`
	Database   string  `json:"database,omitempty"`
	Schema     string  `json:"schema"`
	Kind       string  `json:"kind"`
	TenantID   string  `json:"tenant_id,omitempty"`
	Identifier string  `json:"identifier,omitempty"`
	Status     string  `json:"status"`
	From       *int64  `json:"from"`
	To         *int64  `json:"to"`
	Applied    []int64 `json:"applied,omitempty"`
	Note       string  `json:"note,omitempty"`
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

type jsonReport struct {
	Command     string         `json:"command"`
	OK          bool           `json:"ok"`
	NothingToDo bool           `json:"nothing_to_do"`
	Error       string         `json:"error,omitempty"`
	Latest      jsonLatest     `json:"latest"`
	Counts      map[string]int `json:"counts"`
	DurationMS  float64        `json:"duration_ms"`
	Targets     []jsonTarget   `json:"targets"`
}

type jsonLatest struct {
	Control int64 `json:"control"`
	Tenant  int64 `json:"tenant"`
}

func reportJSON(rep *tenancy.Report, err error) jsonReport {
	out := jsonReport{Command: rep.Op, OK: rep.OK() && err == nil, NothingToDo: rep.NothingToDo() && err == nil,
		Latest: jsonLatest{rep.LatestControl, rep.LatestTenant},
		Counts: map[string]int{}, DurationMS: ms(rep.Duration), Targets: []jsonTarget{}}
	if err != nil {
		out.Error = errText(err)
	}
	for _, o := range []tenancy.Outcome{tenancy.Migrated, tenancy.Current, tenancy.Failed, tenancy.Skipped} {
		out.Counts[string(o)] = rep.Count(o)
	}
	for _, r := range rep.Results {
		t := jsonTarget{Cell: r.Cell, Database: r.Database, Schema: r.Schema, Kind: string(r.Kind), Identifier: r.Identifier, Status: string(r.Outcome),
			From: known(r.From), To: known(r.To), Applied: r.Applied, Note: r.Note, DurationMS: ms(r.Duration)}
		if r.Kind == tenancy.KindTenant || r.Kind == tenancy.KindDatabase && r.Identifier != "" {
			t.TenantID = r.TenantID.String()
		}
		if r.Err != nil {
			t.Error = errText(r.Err)
		}
		out.Targets = append(out.Targets, t)
	}
	return out
}

// writeStatus prints every target with its current and latest version and
// flags drift.
func writeStatus(w io.Writer, st *tenancy.StatusReport) {
	fmt.Fprintf(w, "%-8s %-40s %8s %7s  %s\n", "KIND", "SCHEMA", "CURRENT", "LATEST", "STATE")
	for _, t := range st.Targets {
		state := t.State
		if t.StaleBookkeeping {
			state += fmt.Sprintf(" (bookkeeping says %s: run `migrate up --all`)", version(t.Version))
		}
		where := t.Schema
		if t.Kind == tenancy.KindDatabase {
			where = "database " + t.Database
		}
		fmt.Fprintf(w, "%-8s %-40s %8s %7d  %s%s\n", t.Kind, where, version(t.Current), t.Latest, state, onCell(t.Cell))
	}
	for _, p := range st.Unguarded {
		fmt.Fprintf(w, "UNGUARDED: %s\n", p)
	}
	if len(st.Unguarded) > 0 {
		fmt.Fprintf(w, "UNGUARDED: %d relation(s) would let a tenant statement escape isolation; api and worker refuse to start until they are fixed\n", len(st.Unguarded))
	}
	if d := st.Drift(); len(d) > 0 {
		fmt.Fprintf(w, "DRIFT: %d of %d targets are not at the latest version (or have stale bookkeeping); schemas on different versions break cached statements: run `migrate up`\n", len(d), len(st.Targets))
		return
	}
	fmt.Fprintf(w, "no drift: all %d targets current (control %d, tenant %d)\n", len(st.Targets), st.LatestControl, st.LatestTenant)
}

type jsonUnguarded struct {
	Relation string `json:"relation"`
	Kind     string `json:"kind"`
	Problem  string `json:"problem"`
	Fix      string `json:"fix"`
}

type jsonStatusTarget struct {
	Cell             string `json:"cell,omitempty"`
	Database         string `json:"database,omitempty"`
	Schema           string `json:"schema"`
	Kind             string `json:"kind"`
	TenantID         string `json:"tenant_id,omitempty"`
	Identifier       string `json:"identifier,omitempty"`
	Current          *int64 `json:"current"`
	Latest           int64  `json:"latest"`
	State            string `json:"state"`
	StaleBookkeeping bool   `json:"stale_bookkeeping"`
}

type jsonStatus struct {
	Drift     bool               `json:"drift"`
	Latest    jsonLatest         `json:"latest"`
	Targets   []jsonStatusTarget `json:"targets"`
	Unguarded []jsonUnguarded    `json:"unguarded"`
	// On Citus only: the node of every tenant (docs/scaling.md, Citus).
	CitusPlacement []jsonPlacement `json:"citus_placement,omitempty"`
}

type jsonPlacement struct {
	TenantID   string `json:"tenant_id"`
	Identifier string `json:"identifier"`
	Isolation  string `json:"isolation"`
	Node       string `json:"node"`
}

func placementJSON(ps []tenancy.TenantNode) []jsonPlacement {
	var out []jsonPlacement
	for _, p := range ps {
		out = append(out, jsonPlacement{p.TenantID, p.Identifier, string(p.Isolation), p.Node})
	}
	return out
}

// writePlacement sums the tenants of each Citus node (the JSON lists each).
func writePlacement(w io.Writer, ps []tenancy.TenantNode) {
	type count struct{ premium, standard int }
	var nodes []string
	per := map[string]*count{}
	for _, p := range ps {
		c := per[p.Node]
		if c == nil {
			c = &count{}
			per[p.Node] = c
			nodes = append(nodes, p.Node)
		}
		if p.Isolation == tenancy.IsolationSchema {
			c.premium++
		} else {
			c.standard++
		}
	}
	for _, n := range nodes {
		name := n
		if name == "" {
			name = "(not distributed)"
		}
		fmt.Fprintf(w, "citus    node %-30s %d schema tenant(s), %d shared-table tenant(s)\n", name, per[n].premium, per[n].standard)
	}
}

func statusJSON(st *tenancy.StatusReport) jsonStatus {
	out := jsonStatus{Drift: len(st.Drift()) > 0, Latest: jsonLatest{st.LatestControl, st.LatestTenant},
		Unguarded: []jsonUnguarded{}}
	for _, p := range st.Unguarded {
		out.Unguarded = append(out.Unguarded, jsonUnguarded{Relation: p.Relation, Kind: p.Kind, Problem: p.Why, Fix: p.Fix})
	}
	for _, t := range st.Targets {
		j := jsonStatusTarget{Cell: t.Cell, Database: t.Database, Schema: t.Schema, Kind: string(t.Kind), Identifier: t.Identifier,
			Current: known(t.Current), Latest: t.Latest, State: t.State, StaleBookkeeping: t.StaleBookkeeping}
		if t.Kind == tenancy.KindTenant || t.Kind == tenancy.KindDatabase && t.Identifier != "" {
			j.TenantID = t.TenantID.String()
		}
		out.Targets = append(out.Targets, j)
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func known(v int64) *int64 {
	if v < 0 {
		return nil
	}
	return &v
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
