package service

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/google/uuid"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
}

// handleLogin is the OAuth2 password flow: a form (username=email, password)
// or the same fields as JSON. Unknown email, wrong password and inactive user
// all answer the same 401, after the same amount of hashing work.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	switch mediaType(r) {
	case "application/x-www-form-urlencoded":
		form, err := decodeForm(r)
		if err != nil {
			s.respondError(w, r, err)
			return
		}
		req.Username, req.Password = form.Get("username"), form.Get("password")
	case "application/json":
		if err := decodeJSON(r, &req); err != nil {
			s.respondError(w, r, err)
			return
		}
	default:
		s.respondError(w, r, &Error{Status: http.StatusUnsupportedMediaType,
			Message: "Content-Type must be application/x-www-form-urlencoded or application/json"})
		return
	}
	var missing []*FieldError
	if req.Username == "" {
		missing = append(missing, &FieldError{Field: "username", Message: "field required"})
	}
	if req.Password == "" {
		missing = append(missing, &FieldError{Field: "password", Message: "field required"})
	}
	if err := collect(missing...); err != nil {
		s.respondError(w, r, err)
		return
	}
	// No account has a longer email or password: refused before any lookup
	// or hashing.
	if err := collect(lengthBetween("username", req.Username, 0, maxEmail),
		lengthBetween("password", req.Password, 0, maxPassword)); err != nil {
		s.respondError(w, r, err)
		return
	}
	account := normalizeLogin(req.Username)
	ctx := r.Context()
	var held []reservation
	if s.login != nil {
		var ok bool
		var ref refusal
		if held, ok, ref = s.login.admit(ctx, s.clientIdentity(r), account); !ok {
			s.respondError(w, r, s.tooManyAttempts("Too many login attempts, retry later", ref, false))
			return
		}
	}
	u, ok, err := s.checkLogin(ctx, account, req.Password)
	switch {
	case err != nil: // nothing was checked (store down, hashing at capacity): not a failure
		s.giveBackLogin(ctx, held)
		s.respondError(w, r, err)
		return
	case !ok: // the failure keeps its reservations
		s.respondError(w, r, &Error{Status: http.StatusUnauthorized, Message: "Incorrect email or password"})
		return
	}
	s.giveBackLogin(ctx, held)
	tok, err := s.tokens.Issue(u.ID, u.TokenVersion)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	encode(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "bearer"})
}

// checkLogin reports whether password is account's and the account is
// active. Unknown email, wrong password and inactive user cost the same
// hashing work and all report false; err is set only when nothing could be
// checked.
func (s *Server) checkLogin(ctx context.Context, account, password string) (user.User, bool, error) {
	var hash string
	var u user.User
	if account != "" { // a username that is no valid email names no user: no query
		var err error
		u, err = s.users.ByEmail(ctx, account)
		switch {
		case err == nil:
			hash = u.HashedPassword
		case !errors.Is(err, user.ErrNotFound):
			return user.User{}, false, err
		}
	}
	ok, err := s.hasher.Verify(ctx, password, hash)
	if errors.Is(err, ErrHashBusy) || ctx.Err() != nil {
		return user.User{}, false, err
	}
	return u, err == nil && ok && u.IsActive, nil
}

func (s *Server) giveBackLogin(ctx context.Context, held []reservation) {
	if s.login != nil {
		s.login.release(ctx, held...)
	}
}

// normalizeLogin lower-cases a login name the way emails are stored; a name
// that is not a valid email simply finds no user.
func normalizeLogin(username string) string {
	if e, ferr := normalizeEmail(username); ferr == nil {
		return e
	}
	return ""
}

type createUserRequest struct {
	Email    string  `json:"email"`
	Password string  `json:"password"`
	FullName *string `json:"full_name"`
}

// handleCreateUser is the open sign-up. Fields other than email, password and
// full_name (is_superuser, is_active, id, ...) are refused with 422.
func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	var req createUserRequest
	if err := decodeJSON(r, &req); err != nil {
		s.respondError(w, r, err)
		return
	}
	email, emailErr := normalizeEmail(req.Email)
	if err := collect(emailErr, validatePassword(req.Password), validateFullName(req.FullName)); err != nil {
		s.respondError(w, r, err)
		return
	}
	ctx := r.Context()
	var held reservation
	if s.signup != nil {
		var ok bool
		var ref refusal
		if held, ok, ref = s.signup.admit(ctx, s.clientIdentity(r)); !ok {
			s.respondError(w, r, s.tooManyAttempts("Too many sign-ups from this address, retry later", ref, true))
			return
		}
	}
	u, err := s.createUser(ctx, email, req.Password, req.FullName, false)
	if err != nil {
		if errors.Is(err, ErrHashBusy) && s.signup != nil {
			s.signup.release(ctx, held) // no account was attempted
		}
		s.respondError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+u.ID.String())
	encode(w, http.StatusCreated, publicOf(u))
}

func (s *Server) createUser(ctx context.Context, email, password string, fullName *string, superuser bool) (user.User, error) {
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return user.User{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return user.User{}, err
	}
	return s.users.Create(ctx, user.User{
		ID: id, Email: email, FullName: fullName, HashedPassword: hash,
		IsActive: true, IsSuperuser: superuser,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
	})
}

// handleMe returns the caller.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	me, err := s.authenticate(r.Context(), r)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	encode(w, http.StatusOK, me)
}

type userList struct {
	Data  []UserPublic `json:"data"`
	Count int          `json:"count"`
}

// handleListUsers lists users for a superuser: ?offset=&limit= (offset
// 0..maxOffset, limit minLimit..maxLimit, default defaultLimit); count is the
// total number of users.
func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) {
	me, err := s.authenticate(r.Context(), r)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	if !me.IsSuperuser {
		s.respondError(w, r, errForbidden)
		return
	}
	q := r.URL.Query()
	offset, offErr := queryInt(q.Get("offset"), 0, 0, maxOffset, "offset")
	limit, limErr := queryInt(q.Get("limit"), defaultLimit, minLimit, maxLimit, "limit")
	if err := collect(offErr, limErr); err != nil {
		s.respondError(w, r, err)
		return
	}
	users, total, err := s.users.List(r.Context(), offset, limit)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	out := userList{Data: make([]UserPublic, 0, len(users)), Count: total}
	for _, u := range users {
		out.Data = append(out.Data, publicOf(u))
	}
	encode(w, http.StatusOK, out)
}

func queryInt(raw string, def, lo, hi int, field string) (int, *FieldError) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, &FieldError{Field: field, Message: "must be an integer from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi)}
	}
	return n, nil
}

var errForbidden = &Error{Status: http.StatusForbidden, Message: "Not enough privileges"}

// target authenticates the caller and resolves {id}: 401 without a valid
// token, 422 for a malformed id, 403 when the caller is neither that user nor
// a superuser. Authorization comes before any lookup, so a 404 only ever
// reaches a superuser and ids cannot be probed.
func (s *Server) target(r *http.Request) (me UserPublic, id uuid.UUID, err error) {
	me, err = s.authenticate(r.Context(), r)
	if err != nil {
		return UserPublic{}, uuid.Nil, err
	}
	id, perr := uuid.Parse(r.PathValue("id"))
	if perr != nil || len(r.PathValue("id")) != uuidLength {
		return UserPublic{}, uuid.Nil, validation(FieldError{Field: "id", Message: "must be a UUID"})
	}
	if me.ID != id && !me.IsSuperuser {
		return UserPublic{}, uuid.Nil, errForbidden
	}
	return me, id, nil
}

// handleGetUser returns one user to itself or a superuser, read through the
// cache (after authorization) when it is on.
func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request) {
	me, id, err := s.target(r)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	if me.ID == id {
		encode(w, http.StatusOK, me) // authentication just read this very user
		return
	}
	u, err := s.lookupUser(r.Context(), id)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	encode(w, http.StatusOK, u)
}

// handleUpdateUser applies a JSON subset of email, full_name, password,
// is_active, is_superuser. Only a superuser may set the last two. Changing
// one's own password or email needs current_password (another account's,
// for a superuser, does not). A new password or a deactivation revokes the
// user's tokens (token version bump). The write is fenced (cache.go).
func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) {
	me, id, err := s.target(r)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	ctx := r.Context()
	p, err := s.decodeUpdate(r, me.IsSuperuser, me.ID == id)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	if p.current != nil {
		if err := s.checkCurrentPassword(ctx, r, id, *p.current); err != nil {
			s.respondError(w, r, err)
			return
		}
	}
	upd := p.upd
	if p.password != nil {
		h, err := s.hasher.Hash(ctx, *p.password)
		if err != nil {
			s.respondError(w, r, err)
			return
		}
		upd.HashedPassword = &h
		upd.BumpTokenVersion = true
	}
	if upd.IsActive != nil && !*upd.IsActive {
		upd.BumpTokenVersion = true
	}
	var u user.User
	err = s.fencedWrite(ctx, id, func(ctx context.Context) (err error) {
		u, err = s.users.Update(ctx, id, upd)
		return err
	})
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	encode(w, http.StatusOK, publicOf(u))
}

// errWrongCurrentPassword: 403, so that a client does not take it for a
// dead token (401) and the token is not what is in question.
var errWrongCurrentPassword = &Error{Status: http.StatusForbidden, Message: "current_password is incorrect"}

// checkCurrentPassword verifies the current password of user id before a
// change of its own password or email. It is a password guess like a login:
// reserved against the same per-account and per-client limits before any
// hashing (429 past them), a wrong one kept as a failure (403), a right one
// given back, so PATCH is no way around the login limit.
func (s *Server) checkCurrentPassword(ctx context.Context, r *http.Request, id uuid.UUID, current string) error {
	u, err := s.users.ByID(ctx, id)
	if err != nil {
		return err
	}
	var held []reservation
	if s.login != nil {
		var ok bool
		var ref refusal
		if held, ok, ref = s.login.admit(ctx, s.clientIdentity(r), u.Email); !ok {
			return s.tooManyAttempts("Too many password attempts, retry later", ref, true)
		}
	}
	ok, err := s.hasher.Verify(ctx, current, u.HashedPassword)
	switch {
	case errors.Is(err, ErrHashBusy) || ctx.Err() != nil:
		s.giveBackLogin(ctx, held)
		return err
	case err != nil || !ok:
		return errWrongCurrentPassword
	}
	s.giveBackLogin(ctx, held)
	return nil
}

// userPatch is a decoded PATCH body: the update (without the password's
// hash), the new password, and current_password when the change needs it.
type userPatch struct {
	upd      user.Update
	password *string
	current  *string
}

// decodeUpdate reads a PATCH body field by field, so that absent, null and
// wrongly typed values are told apart and every error names its field. A
// change of one's own (self) password or email without current_password is
// a 422 naming it; current_password is returned only when the change needs
// it (a superuser changing another account needs none: it is ignored).
func (s *Server) decodeUpdate(r *http.Request, superuser, self bool) (userPatch, error) {
	var fields map[string]json.RawMessage
	if err := decodeJSON(r, &fields); err != nil {
		return userPatch{}, err
	}
	var upd user.Update
	var errs []*FieldError
	str := func(name string, raw json.RawMessage, nullable bool) (*string, *FieldError) {
		if bytes.Equal(raw, []byte("null")) {
			if nullable {
				return nil, nil
			}
			return nil, &FieldError{Field: name, Message: "must not be null"}
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return nil, &FieldError{Field: name, Message: "must be of type string"}
		}
		return &v, nil
	}
	boolean := func(name string, raw json.RawMessage) (*bool, *FieldError) {
		var v bool
		if bytes.Equal(raw, []byte("null")) || json.Unmarshal(raw, &v) != nil {
			return nil, &FieldError{Field: name, Message: "must be of type boolean"}
		}
		return &v, nil
	}
	privileged := false
	var password, current *string
	for name, raw := range fields {
		var ferr *FieldError
		switch name {
		case "email":
			var v *string
			if v, ferr = str(name, raw, false); ferr == nil {
				var e string
				if e, ferr = normalizeEmail(*v); ferr == nil {
					upd.Email = &e
				}
			}
		case "full_name":
			if upd.FullName, ferr = str(name, raw, true); ferr == nil {
				upd.SetFullName = true
				ferr = validateFullName(upd.FullName)
			}
		case "password":
			var v *string
			if v, ferr = str(name, raw, false); ferr == nil {
				if ferr = validatePassword(*v); ferr == nil {
					password = v
				}
			}
		case "current_password":
			// Bounded here like every input; checked against the account
			// by the credential-lifecycle step (CONTRACT §10).
			var v *string
			if v, ferr = str(name, raw, false); ferr == nil {
				if ferr = lengthBetween(name, *v, 1, maxPassword); ferr == nil {
					current = v
				}
			}
		case "is_active":
			privileged = true
			upd.IsActive, ferr = boolean(name, raw)
		case "is_superuser":
			privileged = true
			upd.IsSuperuser, ferr = boolean(name, raw)
		default:
			ferr = &FieldError{Field: fieldName(name), Message: "unknown field"}
		}
		errs = append(errs, ferr)
	}
	_, changesPassword := fields["password"]
	_, changesEmail := fields["email"]
	needsCurrent := self && (changesPassword || changesEmail)
	if needsCurrent && current == nil && fields["current_password"] == nil {
		errs = append(errs, &FieldError{Field: "current_password", Message: "field required to change your own password or email"})
	}
	errs = slices.DeleteFunc(errs, func(e *FieldError) bool { return e == nil })
	slices.SortFunc(errs, func(a, b *FieldError) int { return cmp.Compare(a.Field, b.Field) })
	if err := collect(errs...); err != nil {
		return userPatch{}, err
	}
	if privileged && !superuser {
		return userPatch{}, &Error{Status: http.StatusForbidden, Message: "Only a superuser may set is_active or is_superuser"}
	}
	p := userPatch{upd: upd, password: password}
	if needsCurrent {
		p.current = current
	}
	return p, nil
}

// handleDeleteUser deletes a user (itself, or any for a superuser); the
// write is fenced (cache.go), and the user's tokens die with it.
func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	_, id, err := s.target(r)
	if err != nil {
		s.respondError(w, r, err)
		return
	}
	if err := s.fencedWrite(r.Context(), id, func(ctx context.Context) error { return s.users.Delete(ctx, id) }); err != nil {
		s.respondError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
