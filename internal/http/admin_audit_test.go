package http_test

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/audit"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

type auditList struct {
	Items      []audit.Event `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

func listAudit(t *testing.T, s *testenv.Stack, query string) auditList {
	t.Helper()
	res := s.Do(t, "GET", "/admin/v1/audit"+query, nil, testenv.AsAdmin()...)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /admin/v1/audit%s: %d %s", query, res.Status, res.Body)
	}
	var l auditList
	res.JSON(t, &l)
	return l
}

func TestAudit_EveryAdminActionRecordedNewestFirstWithoutSecrets(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := adminCreate(t, s, map[string]any{"identifier": "audited", "name": "Audited", "tier": "premium", "metadata": map[string]any{"plan": "pro"}})
	other := adminCreate(t, s, map[string]any{"identifier": "bystander", "name": "Bystander"})
	base := "/admin/v1/tenants/" + tn.ID.String()
	admin := testenv.AsAdmin()
	steps := []struct {
		method, path string
		body         any
		want         int
	}{
		{"PATCH", base, map[string]any{"name": "Audited Inc", "metadata": map[string]any{"plan": "enterprise"}}, 200},
		{"PATCH", base, map[string]any{"status": "suspended"}, 200},
		{"PATCH", base, map[string]any{"status": "active"}, 200},
		{"PATCH", base, map[string]any{"status": "bogus"}, 400}, // refused: no event
	}
	for _, st := range steps {
		if res := s.Do(t, st.method, st.path, st.body, admin...); res.Status != st.want {
			t.Fatalf("%s %s: %d %s", st.method, st.path, res.Status, res.Body)
		}
	}
	res := s.Do(t, "POST", base+"/api-keys", map[string]string{"name": "ci"}, admin...)
	if res.Status != http.StatusCreated {
		t.Fatalf("create key: %d %s", res.Status, res.Body)
	}
	var key struct{ ID, Key, Prefix string }
	res.JSON(t, &key)
	if res := s.Do(t, "DELETE", base+"/api-keys/"+key.ID, nil, admin...); res.Status != http.StatusNoContent {
		t.Fatalf("revoke key: %d %s", res.Status, res.Body)
	}
	if res := s.Do(t, "DELETE", base, nil, admin...); res.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}

	l := listAudit(t, s, "?tenant_id="+tn.ID.String())
	want := []audit.Action{audit.Delete, audit.KeyRevoke, audit.KeyCreate, audit.Reactivate, audit.Suspend, audit.Update, audit.Create}
	if len(l.Items) != len(want) {
		t.Fatalf("got %d events %+v, want %v", len(l.Items), l.Items, want)
	}
	fp := tkhttp.TokenFingerprint(testenv.AdminToken)
	for i, e := range l.Items {
		if e.Action != want[i] {
			t.Errorf("event %d: action %s, want %s", i, e.Action, want[i])
		}
		if e.TenantID == nil || *e.TenantID != tn.ID {
			t.Errorf("event %d: tenant %v, want %s", i, e.TenantID, tn.ID)
		}
		if e.Actor != fp || e.Credential != fp || e.RequestID == "" || e.CreatedAt.IsZero() {
			t.Errorf("event %d: actor %q credential %q request %q at %v; want the token fingerprint %s and a request id",
				i, e.Actor, e.Credential, e.RequestID, e.CreatedAt, fp)
		}
		raw, _ := json.Marshal(e)
		hash := hex.EncodeToString(tenancy.HashAPIKey(key.Key))
		for _, secret := range []string{testenv.AdminToken, key.Key, hash, key.Prefix} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("event %d leaks a secret: %s", i, raw)
			}
		}
	}
	var diff map[string]map[string]any
	if err := json.Unmarshal(l.Items[5].Diff, &diff); err != nil {
		t.Fatal(err)
	}
	if diff["name"]["from"] != "Audited" || diff["name"]["to"] != "Audited Inc" || diff["metadata"] == nil || diff["status"] != nil {
		t.Errorf("update diff %s: want name and metadata from/to only", l.Items[5].Diff)
	}
	if err := json.Unmarshal(l.Items[4].Diff, &diff); err != nil || diff["status"]["from"] != "active" || diff["status"]["to"] != "suspended" {
		t.Errorf("suspend diff %s", l.Items[4].Diff)
	}
	if err := json.Unmarshal(l.Items[6].Diff, &diff); err != nil || diff["isolation"]["to"] != "schema" || diff["identifier"]["to"] != "audited" {
		t.Errorf("create diff %s", l.Items[6].Diff)
	}
	// The other tenant's events are not in this tenant's list, but in the full one.
	all := listAudit(t, s, "?limit=100")
	var seenOther bool
	for _, e := range all.Items {
		seenOther = seenOther || (e.TenantID != nil && *e.TenantID == other.ID && e.Action == audit.Create)
	}
	if !seenOther || len(all.Items) != len(want)+1 {
		t.Errorf("unfiltered list: %d events (other tenant's create seen: %v), want %d", len(all.Items), seenOther, len(want)+1)
	}
}

func TestAudit_ActorHeaderNamesTheActorAndTokenStaysTheCredential(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{ActorHeader: "X-Admin-Actor"})
	res := s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": "acted-on", "name": "A"},
		append(testenv.AsAdmin(), "X-Admin-Actor", "alice@example.com")...)
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	l := listAudit(t, s, "?action=tenant.create")
	if len(l.Items) != 1 || l.Items[0].Actor != "alice@example.com" || l.Items[0].Credential != tkhttp.TokenFingerprint(testenv.AdminToken) {
		t.Fatalf("events %+v, want one by alice@example.com with the token's fingerprint", l.Items)
	}
	res = s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": "acted-on-2", "name": "A"},
		append(testenv.AsAdmin(), "X-Admin-Actor", "bad\xffactor")...)
	if res.Status != http.StatusBadRequest || res.Code() != apperr.ValidationFailed {
		t.Fatalf("invalid UTF-8 in actor: %d %s, want 400 validation_failed", res.Status, res.Body)
	}
	if res := s.Do(t, "GET", "/admin/v1/tenants?q=acted-on-2", nil, testenv.AsAdmin()...); strings.Contains(string(res.Body), "acted-on-2") {
		t.Error("a request with an invalid actor still created the tenant")
	}
}

func TestAudit_FailedActionsLeaveNoEvent(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	adminCreate(t, s, map[string]any{"identifier": "dup", "name": "Dup"})
	if res := s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": "dup", "name": "Dup"}, testenv.AsAdmin()...); res.Status != http.StatusConflict {
		t.Fatalf("duplicate: %d %s", res.Status, res.Body)
	}
	if res := s.Do(t, "DELETE", "/admin/v1/tenants/00000000-0000-4000-8000-000000000001", nil, testenv.AsAdmin()...); res.Status != http.StatusNotFound {
		t.Fatalf("delete unknown: %d %s", res.Status, res.Body)
	}
	if l := listAudit(t, s, ""); len(l.Items) != 1 || l.Items[0].Action != audit.Create {
		t.Fatalf("events %+v, want only the one successful create", l.Items)
	}
}

func TestAudit_PagesNewestFirstAndRejectsBadFilters(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	var ids []string
	for _, id := range []string{"page-a", "page-b", "page-c", "page-d", "page-e"} {
		ids = append(ids, adminCreate(t, s, map[string]any{"identifier": id, "name": id}).ID.String())
	}
	var got []string
	cursor := ""
	for pages := 0; pages < 5; pages++ {
		l := listAudit(t, s, "?action=tenant.create&limit=2"+cursor)
		for _, e := range l.Items {
			got = append(got, e.TenantID.String())
		}
		if l.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *l.NextCursor
	}
	if len(got) != 5 {
		t.Fatalf("paged %d events, want 5", len(got))
	}
	for i := range got {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("order %v, want newest first %v", got, ids)
		}
	}
	for _, q := range []string{"?tenant_id=nope", "?action=tenant.explode", "?limit=0", "?cursor=zzz"} {
		res := s.Do(t, "GET", "/admin/v1/audit"+q, nil, testenv.AsAdmin()...)
		if res.Status != http.StatusBadRequest || res.Code() != apperr.ValidationFailed {
			t.Errorf("GET /admin/v1/audit%s: %d %s, want 400 validation_failed", q, res.Status, res.Body)
		}
	}
	if res := s.Do(t, "GET", "/admin/v1/audit", nil, testenv.AsTenant(t, &tenancy.Tenant{ID: mustUUID(t, ids[0])})...); res.Status != http.StatusUnauthorized {
		t.Errorf("tenant credential on the audit trail: %d, want 401", res.Status)
	}
}

func TestAudit_AppRoleCanAppendButNeverRewrite(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	adminCreate(t, s, map[string]any{"identifier": "kept", "name": "Kept"})
	for _, stmt := range []string{
		`UPDATE tenancy.audit_events SET actor = 'someone else'`,
		`DELETE FROM tenancy.audit_events`,
		`TRUNCATE tenancy.audit_events`,
	} {
		_, err := s.App.Exec(stmt)
		if err == nil || !strings.Contains(err.Error(), "42501") {
			t.Errorf("app role ran %q: %v, want permission denied (42501)", stmt, err)
		}
	}
	if l := listAudit(t, s, ""); len(l.Items) != 1 || l.Items[0].Actor != tkhttp.TokenFingerprint(testenv.AdminToken) {
		t.Errorf("trail changed: %+v", l.Items)
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
