package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/shelterwatch/shelterwatch/video/cameras"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

// authorizeCamera lets a WHEP request through when its token may view the
// camera. The viewer is named by the token's name in the audit log.
func (a *api) authorizeCamera(r *http.Request, camera string) (string, error) {
	tok, _, err := a.principal(r)
	if errors.Is(err, errCSRF) {
		return "", fmt.Errorf("%w: %v", whep.ErrForbidden, err)
	}
	if err != nil {
		return "", whep.ErrUnauthorized
	}
	if !tok.mayView(camera) {
		a.opts.Logger.Warn("httpapi: camera refused", "token", tok.Name, "camera", camera)
		return "", whep.ErrForbidden
	}
	return tok.Name, nil
}

// cameras lists the cameras this token may view, with their status.
func (a *api) cameras(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r.Context())
	out := []cameras.Status{}
	for _, c := range a.opts.Video.Cameras() {
		if tok.mayView(c.ID) {
			out = append(out, c)
		}
	}
	writeJSON(w, out)
}

// videoSessions lists who is watching now, on the cameras this token may
// watch itself: a manager of one placement does not learn who watches
// another.
func (a *api) videoSessions(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r.Context())
	out := []whep.Record{}
	for _, s := range a.opts.Video.Sessions() {
		if tok.mayView(s.Camera) {
			out = append(out, s)
		}
	}
	writeJSON(w, out)
}
