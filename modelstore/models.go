package modelstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/modelstore/driver"
)

// MaxVersion is the highest version number; markers are zero-padded to ten
// digits so listing order is numeric order.
const MaxVersion = 999_999_999

// MaxMetaSize bounds the metadata stored beside a version marker.
const MaxMetaSize = 64 << 10

// VersionInfo describes one published model version.
type VersionInfo struct {
	Version int       `json:"version"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	// Meta is what the platform stored at publish (spec, metrics), JSON.
	// Not part of the struct's JSON: the platform decides what to expose.
	Meta json.RawMessage `json:"-"`
	// Data is the storage key of the encrypted artifact (internal).
	Data string `json:"-"`
}

// marker is VersionInfo as stored (same fields, storage tags).
type marker struct {
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"`
	Size    int64           `json:"size"`
	Created time.Time       `json:"created"`
	Meta    json.RawMessage `json:"meta,omitempty"`
	Data    string          `json:"data"`
}

// Alias points at a version, optionally splitting traffic with a canary.
type Alias struct {
	Version       int `json:"version"`
	CanaryVersion int `json:"canary_version,omitempty"`
	CanaryWeight  int `json:"canary_weight,omitempty"` // percent, 0..100
}

func modelDir(tenant, model string) string { return tenantOwner(tenant) + "/models/" + model + "/" }

func markerKey(tenant, model string, v int) string {
	return fmt.Sprintf("%sversions/%010d", modelDir(tenant, model), v)
}

// PublishModel streams size bytes from r as the next version of model and
// returns what was recorded. Memory stays bounded whatever the size. Of
// concurrent publishers each gets its own version number. It is
// goroutine-safe.
func (s *Store) PublishModel(ctx context.Context, tenant, model string, r io.Reader, size int64, meta []byte) (VersionInfo, error) {
	return s.publish(ctx, tenant, model, 0, r, size, meta)
}

// PublishVersion publishes an explicit version; if it exists (or a
// concurrent publisher takes it first) it fails with [ErrExists] and
// nothing visible changes. It is goroutine-safe.
func (s *Store) PublishVersion(ctx context.Context, tenant, model string, version int, r io.Reader, size int64, meta []byte) (VersionInfo, error) {
	if version < 1 || version > MaxVersion {
		return VersionInfo{}, fmt.Errorf("modelstore: publish %s/%s: version %d out of 1..%d: %w", tenant, model, version, MaxVersion, ErrInvalidName)
	}
	return s.publish(ctx, tenant, model, version, r, size, meta)
}

func (s *Store) publish(ctx context.Context, tenant, model string, version int, r io.Reader, size int64, meta []byte) (VersionInfo, error) {
	if err := checkNames([]string{"tenant", "model"}, tenant, model); err != nil {
		return VersionInfo{}, err
	}
	dir := modelDir(tenant, model)
	if size < 0 || size > s.opts.MaxArtifactSize {
		return VersionInfo{}, wrap("publish", dir, fmt.Errorf("size %d, limit %d: %w", size, s.opts.MaxArtifactSize, ErrTooLarge))
	}
	if len(meta) > MaxMetaSize {
		return VersionInfo{}, wrap("publish", dir, fmt.Errorf("metadata %d bytes, limit %d: %w", len(meta), MaxMetaSize, ErrTooLarge))
	}
	if len(meta) > 0 && !json.Valid(meta) {
		return VersionInfo{}, wrap("publish", dir, fmt.Errorf("metadata is not JSON: %w", ErrInvalidName))
	}
	if version > 0 {
		// Fail before uploading gigabytes for a version that is taken.
		if _, err := s.Version(ctx, tenant, model, version); err == nil {
			return VersionInfo{}, wrap("publish", markerKey(tenant, model, version), ErrExists)
		}
	}
	// The data goes under a fresh random key, so racing publishers never
	// overwrite each other's bytes; the marker that wins names its own.
	owner := tenantOwner(tenant)
	data := dir + "data/" + randHex(16)
	sum, err := s.putStream(ctx, owner, data, r, size)
	if err != nil {
		return VersionInfo{}, wrap("publish", data, err)
	}
	info := VersionInfo{SHA256: sum, Size: size, Created: s.opts.Now().UTC(), Meta: meta, Data: data}
	next := version
	for attempt := 0; attempt < DefaultPublishRetries; attempt++ {
		if version == 0 && (attempt == 0 || next == 0) {
			last, err := s.lastVersion(ctx, tenant, model)
			if err != nil {
				s.remove(ctx, data)
				return VersionInfo{}, err
			}
			next = last + 1
		}
		if next > MaxVersion {
			s.remove(ctx, data)
			return VersionInfo{}, wrap("publish", dir, fmt.Errorf("no version numbers left: %w", ErrTooLarge))
		}
		info.Version = next
		b, _ := json.Marshal(marker(info))
		mk := markerKey(tenant, model, next)
		err := s.putSealed(ctx, owner, mk, b, true)
		if err == nil {
			return info, nil
		}
		if !errors.Is(err, driver.ErrExists) || version > 0 {
			s.remove(ctx, data)
			return VersionInfo{}, wrap("publish", mk, err)
		}
		next++ // someone took it; try the following number
	}
	s.remove(ctx, data)
	return VersionInfo{}, wrap("publish", dir, fmt.Errorf("too much contention: %w", ErrUnavailable))
}

func (s *Store) lastVersion(ctx context.Context, tenant, model string) (int, error) {
	vs, err := s.versionNumbers(ctx, tenant, model)
	if err != nil || len(vs) == 0 {
		return 0, err
	}
	return vs[len(vs)-1], nil
}

func (s *Store) versionNumbers(ctx context.Context, tenant, model string) ([]int, error) {
	dir := modelDir(tenant, model) + "versions/"
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	list, err := s.b.List(ctx, dir, nil)
	if err != nil {
		return nil, wrap("list versions", dir, err)
	}
	out := make([]int, 0, len(list))
	for _, a := range list {
		name := strings.TrimPrefix(a.Key, dir)
		if len(name) != 10 {
			continue
		}
		if v, err := strconv.Atoi(name); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	return out, nil
}

// Version reads one version's marker (not its data). It is goroutine-safe.
func (s *Store) Version(ctx context.Context, tenant, model string, version int) (VersionInfo, error) {
	if err := checkNames([]string{"tenant", "model"}, tenant, model); err != nil {
		return VersionInfo{}, err
	}
	if version < 1 || version > MaxVersion {
		return VersionInfo{}, fmt.Errorf("modelstore: version %d of %s/%s: %w", version, tenant, model, ErrNotFound)
	}
	mk := markerKey(tenant, model, version)
	b, err := s.getSealed(ctx, tenantOwner(tenant), mk, MaxMetaSize+4096)
	if err != nil {
		return VersionInfo{}, wrap("read version", mk, err)
	}
	var m marker
	err = json.Unmarshal(b, &m)
	info := VersionInfo(m)
	if err != nil || info.Version != version ||
		!strings.HasPrefix(info.Data, modelDir(tenant, model)+"data/") || info.Size < 0 {
		return VersionInfo{}, wrap("read version", mk, fmt.Errorf("bad marker: %w", ErrCorrupt))
	}
	return info, nil
}

// Versions lists a model's versions in ascending order, with their
// metadata, without reading artifacts. A model with no versions is
// [ErrNotFound]. It is goroutine-safe.
func (s *Store) Versions(ctx context.Context, tenant, model string) ([]VersionInfo, error) {
	if err := checkNames([]string{"tenant", "model"}, tenant, model); err != nil {
		return nil, err
	}
	vs, err := s.versionNumbers(ctx, tenant, model)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, wrap("list versions", modelDir(tenant, model), ErrNotFound)
	}
	out := make([]VersionInfo, 0, len(vs))
	for _, v := range vs {
		info, err := s.Version(ctx, tenant, model, v)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// Models lists a tenant's model names. It is goroutine-safe.
func (s *Store) Models(ctx context.Context, tenant string) ([]string, error) {
	if err := checkNames([]string{"tenant"}, tenant); err != nil {
		return nil, err
	}
	return s.listNames(ctx, tenantOwner(tenant)+"/models/", "", "", 0)
}

// OpenModel reads a version's artifact, decrypted and verified against the
// sha256 recorded at publish. A mismatch is [ErrCorrupt] naming the object;
// other versions are unaffected. It is goroutine-safe.
func (s *Store) OpenModel(ctx context.Context, tenant, model string, version int) ([]byte, VersionInfo, error) {
	rc, info, err := s.ModelReader(ctx, tenant, model, version)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	b, err := readAll(rc, make([]byte, 0, info.Size))
	if err != nil {
		return nil, info, err
	}
	return b, info, nil
}

// ModelReader streams a version's artifact; reading to io.EOF means it was
// verified (a mismatch ends in ErrCorrupt instead). It is goroutine-safe;
// the reader is not.
func (s *Store) ModelReader(ctx context.Context, tenant, model string, version int) (io.ReadCloser, VersionInfo, error) {
	info, err := s.Version(ctx, tenant, model, version)
	if err != nil {
		return nil, info, err
	}
	rc, err := s.openStream(ctx, tenantOwner(tenant), info.Data, info.SHA256, info.Size)
	if err != nil {
		return nil, info, wrap("open model", info.Data, err)
	}
	return rc, info, nil
}

func aliasKey(tenant, model, alias string) string {
	return modelDir(tenant, model) + "aliases/" + alias
}

// validAlias rejects names that Resolve would read as something else.
func validAlias(a string) error {
	if err := checkNames([]string{"alias"}, a); err != nil {
		return err
	}
	if a == "latest" {
		return fmt.Errorf("modelstore: alias %q is reserved: %w", a, ErrInvalidName)
	}
	if _, err := strconv.Atoi(a); err == nil {
		return fmt.Errorf("modelstore: alias %q is a number: %w", a, ErrInvalidName)
	}
	return nil
}

// SetAlias points alias at a.Version (and a.CanaryVersion for
// a.CanaryWeight percent of requests). The versions must exist. The move is
// one object write: readers see the old target or the new one. It is
// goroutine-safe.
func (s *Store) SetAlias(ctx context.Context, tenant, model, alias string, a Alias) error {
	if err := checkNames([]string{"tenant", "model"}, tenant, model); err != nil {
		return err
	}
	if err := validAlias(alias); err != nil {
		return err
	}
	k := aliasKey(tenant, model, alias)
	if a.CanaryWeight < 0 || a.CanaryWeight > 100 || (a.CanaryWeight > 0) != (a.CanaryVersion > 0) {
		return wrap("set alias", k, fmt.Errorf("canary weight %d with canary version %d: %w", a.CanaryWeight, a.CanaryVersion, ErrInvalidName))
	}
	check := []int{a.Version}
	if a.CanaryVersion > 0 {
		check = append(check, a.CanaryVersion)
	}
	for _, v := range check {
		if _, err := s.Version(ctx, tenant, model, v); err != nil {
			return wrap("set alias", k, err)
		}
	}
	b, _ := json.Marshal(a)
	return wrap("set alias", k, s.putSealed(ctx, tenantOwner(tenant), k, b, false))
}

// GetAlias reads one alias. It is goroutine-safe.
func (s *Store) GetAlias(ctx context.Context, tenant, model, alias string) (Alias, error) {
	if err := checkNames([]string{"tenant", "model", "alias"}, tenant, model, alias); err != nil {
		return Alias{}, err
	}
	k := aliasKey(tenant, model, alias)
	b, err := s.getSealed(ctx, tenantOwner(tenant), k, 4096)
	if err != nil {
		return Alias{}, wrap("get alias", k, err)
	}
	a, err := decodeAlias(b)
	return a, wrap("get alias", k, err)
}

// decodeAlias parses and checks a stored alias.
func decodeAlias(b []byte) (Alias, error) {
	var a Alias
	if err := json.Unmarshal(b, &a); err != nil {
		return Alias{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if a.Version < 1 || a.Version > MaxVersion || a.CanaryWeight < 0 || a.CanaryWeight > 100 ||
		a.CanaryVersion < 0 || a.CanaryVersion > MaxVersion {
		return Alias{}, fmt.Errorf("alias out of range %+v: %w", a, ErrCorrupt)
	}
	return a, nil
}

// DeleteAlias removes an alias. It is goroutine-safe.
func (s *Store) DeleteAlias(ctx context.Context, tenant, model, alias string) error {
	if err := checkNames([]string{"tenant", "model", "alias"}, tenant, model, alias); err != nil {
		return err
	}
	k := aliasKey(tenant, model, alias)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return wrap("delete alias", k, s.b.Delete(ctx, k))
}

// Aliases reads every alias of a model. It is goroutine-safe.
func (s *Store) Aliases(ctx context.Context, tenant, model string) (map[string]Alias, error) {
	if err := checkNames([]string{"tenant", "model"}, tenant, model); err != nil {
		return nil, err
	}
	names, err := s.listNames(ctx, modelDir(tenant, model)+"aliases/", "", "", 0)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Alias, len(names))
	for _, n := range names {
		a, err := s.GetAlias(ctx, tenant, model, n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[n] = a
	}
	return out, nil
}

// Resolve turns a reference — a version number ("3"), "latest", or an
// alias name — into a version's marker. For an alias it returns the primary
// version; callers that honour canaries use GetAlias. It is goroutine-safe.
func (s *Store) Resolve(ctx context.Context, tenant, model, ref string) (VersionInfo, error) {
	if err := checkNames([]string{"tenant", "model", "ref"}, tenant, model, ref); err != nil {
		return VersionInfo{}, err
	}
	if v, err := strconv.Atoi(ref); err == nil {
		return s.Version(ctx, tenant, model, v)
	}
	if ref == "latest" {
		v, err := s.lastVersion(ctx, tenant, model)
		if err != nil {
			return VersionInfo{}, err
		}
		if v == 0 {
			return VersionInfo{}, wrap("resolve latest", modelDir(tenant, model), ErrNotFound)
		}
		return s.Version(ctx, tenant, model, v)
	}
	a, err := s.GetAlias(ctx, tenant, model, ref)
	if err != nil {
		return VersionInfo{}, err
	}
	return s.Version(ctx, tenant, model, a.Version)
}
