package tenancy

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/your-org/tenantkit/internal/apperr"
)

// tenantField marks a model as tenant data: any model with a TenantID field
// is guarded by the callbacks below.
const tenantField = "TenantID"

// OpenGORM wraps a pool from OpenDB, or the Pools of several cells. Statements run with a tenant-bound
// context execute in that tenant's isolation (the driver binds them); the
// callbacks add defence in depth and refuse tenant tables with no tenant.
func OpenGORM(db gorm.ConnPool, log *slog.Logger) (*gorm.DB, error) {
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{
		// Each statement is its own implicit transaction with its binding;
		// GORM's default BEGIN/COMMIT around writes would only add round trips.
		SkipDefaultTransaction: true,
		// Binaries check the connection (and the role) before they open GORM.
		DisableAutomaticPing: true,
		NowFunc:              func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }, // Postgres precision
		// Name the model's columns instead of SELECT *: a statement's result
		// shape then never changes when a migration adds a column while the
		// binaries run (no "cached plan must not change result type").
		QueryFields: true,
		Logger:      gormLogger{log: log, slow: 200 * time.Millisecond},
	})
	if err != nil {
		return nil, fmt.Errorf("open gorm: %w", err)
	}
	if err := registerCallbacks(g); err != nil {
		return nil, err
	}
	return g, nil
}

// DBFor returns db bound to the tenant of ctx: the one way handlers and tasks
// reach tenant data. It fails when ctx carries no tenant.
func DBFor(ctx context.Context, db *gorm.DB) (*gorm.DB, error) {
	if _, ok := FromContext(ctx); !ok {
		return nil, apperr.New(apperr.Internal, "tenant data requested without a bound tenant")
	}
	return db.WithContext(ctx), nil
}

func registerCallbacks(g *gorm.DB) error {
	cb := g.Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("tenancy:create", stampTenant),
		cb.Query().Before("gorm:query").Register("tenancy:query", scopeToTenant),
		cb.Update().Before("gorm:update").Register("tenancy:update", scopeWrite),
		cb.Delete().Before("gorm:delete").Register("tenancy:delete", scopeWrite),
		cb.Update().Before("gorm:update").Register("tenancy:returning", nameReturnedColumns),
		cb.Update().Before("gorm:update").Register("tenancy:keep-tenant", omitUnchangedTenant),
		cb.Delete().Before("gorm:delete").Register("tenancy:returning", nameReturnedColumns),
		cb.Row().Before("gorm:row").Register("tenancy:row", scopeToTenant),
	} {
		if err != nil {
			return fmt.Errorf("register tenancy callbacks: %w", err)
		}
	}
	return nil
}

// boundTenant returns the statement's tenant when it touches a tenant table;
// it records an error when such a statement has no tenant (invariant 1).
func boundTenant(db *gorm.DB) (*Tenant, bool) {
	st := db.Statement
	if st.Schema == nil || st.Schema.LookUpField(tenantField) == nil {
		return nil, false
	}
	t, ok := FromContext(st.Context)
	if !ok {
		_ = db.AddError(apperr.New(apperr.Internal, "statement on tenant table %s without a bound tenant", st.Schema.Table))
		return nil, false
	}
	return t, true
}

// scopeWrite scopes an update or delete to the tenant. GORM refuses one with
// no condition (ErrMissingWhereClause) but would count the tenant condition as
// one, turning a forgotten WHERE into a write to all of the tenant's rows; so
// check first, as GORM does, counting the primary keys it adds from the model.
func scopeWrite(db *gorm.DB) {
	st := db.Statement
	if st.Schema != nil && st.Schema.LookUpField(tenantField) != nil && !db.AllowGlobalUpdate {
		if _, ok := st.Clauses["WHERE"]; !ok && !hasPrimaryKeyValues(st) {
			_ = db.AddError(gorm.ErrMissingWhereClause)
			return
		}
	}
	scopeToTenant(db)
}

// nameReturnedColumns turns RETURNING * into the model's columns, for the
// same reason as QueryFields: a column added by a migration must not change
// the statement's result shape.
func nameReturnedColumns(db *gorm.DB) {
	st := db.Statement
	c, ok := st.Clauses["RETURNING"]
	if !ok || st.Schema == nil {
		return
	}
	ret, ok := c.Expression.(clause.Returning)
	if !ok || len(ret.Columns) > 0 {
		return
	}
	for _, name := range st.Schema.DBNames {
		ret.Columns = append(ret.Columns, clause.Column{Name: name})
	}
	c.Expression = ret
	st.Clauses["RETURNING"] = c
}

func hasPrimaryKeyValues(st *gorm.Statement) bool {
	rv := st.ReflectValue
	if st.Model != nil {
		rv = reflect.ValueOf(st.Model)
	}
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	_, values := schema.GetIdentityFieldValuesMap(st.Context, rv, st.Schema.PrimaryFields)
	return len(values) > 0
}

func scopeToTenant(db *gorm.DB) {
	t, ok := boundTenant(db)
	if !ok {
		return
	}
	db.Statement.AddClause(clause.Where{Exprs: []clause.Expression{
		clause.Eq{Column: clause.Column{Table: clause.CurrentTable, Name: "tenant_id"}, Value: t.ID},
	}})
}

func stampTenant(db *gorm.DB) {
	t, ok := boundTenant(db)
	if !ok {
		return
	}
	field := db.Statement.Schema.LookUpField(tenantField)
	rv := db.Statement.ReflectValue
	set := func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			if err := field.Set(db.Statement.Context, v, t.ID); err != nil {
				_ = db.AddError(err)
			}
		case reflect.Map: // Model(&M{}).Create(map[string]any{...}): keys may be field or column names
			m, ok := v.Interface().(map[string]any)
			if !ok {
				_ = db.AddError(fmt.Errorf("create %s from %s: want map[string]any", db.Statement.Schema.Table, v.Type()))
				return
			}
			delete(m, field.Name)
			m[field.DBName] = t.ID
		}
	}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			set(reflect.Indirect(rv.Index(i)))
		}
	default:
		set(rv)
	}
}

// omitUnchangedTenant leaves tenant_id out of an UPDATE from a model whose
// TenantID is the bound tenant (Save writes every column): setting it to
// itself changes nothing, and Citus refuses any SET of the distribution
// column it cannot prove unchanged ("modifying the partition value").
// A model carrying another tenant's id keeps it, and the policy refuses it.
func omitUnchangedTenant(db *gorm.DB) {
	st := db.Statement
	if db.Error != nil || st.Schema == nil {
		return
	}
	field := st.Schema.LookUpField(tenantField)
	t, ok := FromContext(st.Context)
	if field == nil || !ok {
		return
	}
	rv := reflect.Indirect(st.ReflectValue)
	if rv.Kind() != reflect.Struct {
		return
	}
	if v, zero := field.ValueOf(st.Context, rv); !zero && fmt.Sprint(v) == t.ID.String() {
		st.Omits = append(st.Omits, field.DBName)
	}
}
