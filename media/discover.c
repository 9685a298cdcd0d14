/* media/discover.c: a bounded walk of the media root looking for bundle
 * directories.  Every step below the root is openat-relative with
 * O_NOFOLLOW; types are checked with fstatat before anything is opened, so
 * a device node or FIFO planted on a stick is never opened (opening a
 * device can have side effects) and a symlink never leads elsewhere. */
#include "media/discover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custody/manifest.h"
#include "custody/record.h"
#include "media/stage.h"
#include "station/base/error.h"

struct scan {
	struct md_discovery *disc;
	size_t cap_bundles, cap_notes;
	unsigned max_depth;
	size_t dirs;
	int dirs_noted, bundles_noted;
	uint8_t *buf; /* one manifest, CU_RECORD_MAX + 1 */
};

static void note(struct scan *sc, enum md_note_kind kind, int code,
		 const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void note(struct scan *sc, enum md_note_kind kind, int code,
		 const char *path, const char *fmt, ...)
{
	struct md_discovery *disc = sc->disc;
	struct md_note *n;
	va_list ap;

	if (disc->nnotes == MD_DISCOVER_NOTES) {
		disc->notes_dropped++;
		return;
	}
	if (disc->nnotes == sc->cap_notes) {
		size_t cap = sc->cap_notes ? sc->cap_notes * 2 : 8;
		struct md_note *more =
		    realloc(disc->notes, cap * sizeof(*more));
		if (!more) {
			disc->notes_dropped++;
			return;
		}
		disc->notes = more;
		sc->cap_notes = cap;
	}
	n = &disc->notes[disc->nnotes++];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->code = code;
	snprintf(n->path, sizeof(n->path), "%s", path);
	va_start(ap, fmt);
	vsnprintf(n->text, sizeof(n->text), fmt, ap);
	va_end(ap);
}

/* What people and other systems leave on sticks; never a bundle. */
static int is_litter(const char *name)
{
	return name[0] == '.' ||
	       strcasecmp(name, "System Volume Information") == 0 ||
	       strcasecmp(name, "$RECYCLE.BIN") == 0 ||
	       strcasecmp(name, "RECYCLER") == 0 ||
	       strcmp(name, "lost+found") == 0;
}

static int is_label(const char *s, size_t n)
{
	if (n < 1 || n > 32 || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* manifest.sig or manifest.LABEL.sig (formats §2) */
static int is_manifest_sig(const char *name)
{
	size_t n = strlen(name);

	if (strncmp(name, "manifest.", 9) != 0 || n < 12 ||
	    strcmp(name + n - 4, ".sig") != 0)
		return 0;
	return n == 12 || (n > 13 && is_label(name + 9, n - 13));
}

static const char *type_name(mode_t m)
{
	if (S_ISLNK(m))
		return "symbolic link, not followed";
	if (S_ISBLK(m) || S_ISCHR(m))
		return "device node, not opened";
	if (S_ISFIFO(m))
		return "FIFO, not opened";
	if (S_ISSOCK(m))
		return "socket, not opened";
	return "not a regular file or directory";
}

/* A first look at the images the manifest names, without reading them. */
static void look_at_images(int dirfd, const char *path,
			   const struct cu_manifest *m, struct md_bundle *b)
{
	for (size_t i = 0; i < m->nimages && !b->image_problem; i++) {
		const struct cu_image *img = &m->images[i];
		struct stat st;

		if (fstatat(dirfd, img->file, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			b->image_problem =
			    errno == ENOENT ? STN_E_IMAGE : STN_E_IO;
			snprintf(b->image_note, sizeof(b->image_note),
				 "%s/%s: %s", path, img->file,
				 errno == ENOENT ? "missing" : strerror(errno));
		} else if (!S_ISREG(st.st_mode)) {
			b->image_problem = STN_E_IMAGE;
			snprintf(b->image_note, sizeof(b->image_note),
				 "%s/%s: %s", path, img->file,
				 S_ISLNK(st.st_mode) ? "is a symbolic link"
						     : type_name(st.st_mode));
		} else if (img->size > CU_IMAGE_MAX) {
			b->image_problem = STN_E_TOOBIG;
			snprintf(b->image_note, sizeof(b->image_note),
				 "%s/%s: %llu bytes, over the %llu byte "
				 "image cap",
				 path, img->file, (unsigned long long)img->size,
				 (unsigned long long)CU_IMAGE_MAX);
		} else if ((uint64_t)st.st_size != img->size) {
			b->image_problem = STN_E_IMAGE;
			snprintf(b->image_note, sizeof(b->image_note),
				 "%s/%s: size is %lld bytes, manifest says "
				 "%llu",
				 path, img->file, (long long)st.st_size,
				 (unsigned long long)img->size);
		}
	}
}

static int is_dir_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* Counts the entries of dirfd's `name` as staging does (every entry
 * readdir gives, "." and ".." too), stopping past CU_DIR_ENTRIES_MAX, and
 * the `manifest[.LABEL].sig` among them.  -1 when it cannot be listed. */
static long count_entries(int dirfd, const char *name, size_t *sigs)
{
	int fd = openat(dirfd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	long seen = 0;

	if (!dh) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((e = readdir(dh)) && ++seen <= CU_DIR_ENTRIES_MAX)
		if (sigs)
			*sigs += is_manifest_sig(e->d_name);
	closedir(dh);
	return seen;
}

/* The directory limit staging applies (media/stage.h): a bundle it would
 * refuse is listed as refused, with the reason verify will give, not as
 * fine.  0 when within it, else the refusal is noted. */
static int over_dir_limit(struct scan *sc, int dirfd, const char *path,
			  size_t *sigs)
{
	static const char *const subs[] = {".", CU_LAYOUT_CUSTODY, CU_LAYOUT_TOKENS,
						   CU_LAYOUT_CRL};
	char where[4200];

	for (size_t i = 0; i < sizeof(subs) / sizeof(*subs); i++) {
		if (i > 0 && !is_dir_at(dirfd, subs[i]))
			continue;
		if (count_entries(dirfd, subs[i], i == 0 ? sigs : NULL) <=
		    CU_DIR_ENTRIES_MAX)
			continue;
		snprintf(where, sizeof(where), "%s%s%s", path,
			 i > 0 ? "/" : "", i > 0 ? subs[i] : "");
		note(sc, MD_NOTE_REFUSED, STN_E_TOOBIG, where,
		     CU_DIR_ENTRIES_WHY, CU_DIR_ENTRIES_MAX);
		return 1;
	}
	return 0;
}

static struct md_bundle *new_bundle(struct scan *sc, const char *path)
{
	struct md_discovery *disc = sc->disc;

	if (disc->nbundles == MD_DISCOVER_BUNDLES) {
		if (!sc->bundles_noted)
			note(sc, MD_NOTE_LIMIT, STN_E_TOOBIG, path,
			     "more than %d bundles on the media; the rest "
			     "are not listed",
			     MD_DISCOVER_BUNDLES);
		sc->bundles_noted = 1;
		return NULL;
	}
	if (disc->nbundles == sc->cap_bundles) {
		size_t cap = sc->cap_bundles ? sc->cap_bundles * 2 : 4;
		struct md_bundle *more =
		    realloc(disc->bundles, cap * sizeof(*more));
		if (!more)
			return NULL;
		disc->bundles = more;
		sc->cap_bundles = cap;
	}
	return memset(&disc->bundles[disc->nbundles++], 0,
		      sizeof(struct md_bundle));
}

/* dirfd holds a `manifest` entry: list the bundle, or say why not.  */
static int read_bundle(struct scan *sc, int dirfd, const char *path,
		       const char *medium)
{
	char where[4200];
	struct cu_manifest *m = NULL;
	struct md_bundle *b;
	struct stn_diag why;
	struct stat st;
	size_t have = 0, nsigs = 0;
	int fd;

	snprintf(where, sizeof(where), "%s/manifest", path);
	if (fstatat(dirfd, "manifest", &st, AT_SYMLINK_NOFOLLOW) != 0) {
		note(sc, MD_NOTE_REFUSED, STN_E_IO, where, "stat: %s",
		     strerror(errno));
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		note(sc, MD_NOTE_REFUSED, STN_E_UNSAFE, where,
		     "manifest is a %s",
		     S_ISLNK(st.st_mode) ? "symbolic link"
					 : "special file or directory");
		return 0;
	}
	if (st.st_size > CU_RECORD_MAX) {
		note(sc, MD_NOTE_REFUSED, STN_E_TOOBIG, where,
		     "%lld bytes, over the %d byte cap", (long long)st.st_size,
		     CU_RECORD_MAX);
		return 0;
	}
	fd = openat(dirfd, "manifest",
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		note(sc, MD_NOTE_REFUSED, fd < 0 ? STN_E_IO : STN_E_UNSAFE,
		     where, "%s",
		     fd < 0 ? strerror(errno) : "changed while being read");
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (have <= CU_RECORD_MAX) {
		ssize_t n = read(fd, sc->buf + have, CU_RECORD_MAX + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			note(sc, MD_NOTE_REFUSED, STN_E_IO, where,
			     "read error: %s (media pulled or damaged?)",
			     strerror(errno));
			close(fd);
			return 0;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	stn_diag_init(&why);
	if (cu_manifest_parse(sc->buf, have, where, &m, &why) != 0) {
		note(sc,
		     why.code == STN_E_NOMEM ? MD_NOTE_LIMIT : MD_NOTE_REFUSED,
		     why.code, why.where[0] ? why.where : where, "%s",
		     why.text);
		return why.code == STN_E_NOMEM ? why.code : 0;
	}
	if (over_dir_limit(sc, dirfd, path, &nsigs)) {
		cu_manifest_free(m);
		return 0;
	}
	if (!(b = new_bundle(sc, path))) {
		cu_manifest_free(m);
		return sc->bundles_noted ? 0 : STN_E_NOMEM;
	}
	snprintf(b->path, sizeof(b->path), "%s", path);
	snprintf(b->medium, sizeof(b->medium), "%s", medium);
	snprintf(b->name, sizeof(b->name), "%s", m->name);
	snprintf(b->version, sizeof(b->version), "%s", m->version);
	snprintf(b->model, sizeof(b->model), "%s", m->model);
	snprintf(b->id_hex, sizeof(b->id_hex), "%s", m->id_hex);
	b->sequence = m->sequence;
	b->created = m->created;
	b->expires = m->expires;
	b->nimages = m->nimages;
	for (size_t i = 0; i < m->nimages; i++)
		b->bytes = m->images[i].size > UINT64_MAX - b->bytes
			       ? UINT64_MAX
			       : b->bytes + m->images[i].size;
	b->nsignatures = nsigs;
	b->has_custody = is_dir_at(dirfd, "custody");
	b->has_tokens = is_dir_at(dirfd, "tokens");
	b->has_crl = is_dir_at(dirfd, "crl");
	look_at_images(dirfd, path, m, b);
	cu_manifest_free(m);
	return 0;
}

static int scan_dir(struct scan *sc, int dirfd, const char *path,
		    const char *medium, dev_t dev, unsigned depth);

static int visit_entry(struct scan *sc, int dirfd, const char *path,
		       const char *medium, dev_t dev, unsigned depth,
		       const struct dirent *e)
{
	char sub[4096];
	struct stat st;
	int fd, rc;

	if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >=
	    sizeof(sub))
		return 0; /* cannot be named; cannot be staged either */
	if (e->d_type == DT_REG)
		return 0; /* stray files are not our business */
	if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0; /* gone since the listing */
	if (!S_ISDIR(st.st_mode)) {
		if (!S_ISREG(st.st_mode))
			note(sc, MD_NOTE_IGNORED, 0, sub, "%s",
			     type_name(st.st_mode));
		return 0;
	}
	if (depth >= sc->max_depth)
		return 0;
	if (sc->dirs >= MD_DISCOVER_DIRS) {
		if (!sc->dirs_noted)
			note(sc, MD_NOTE_LIMIT, STN_E_TOOBIG, sub,
			     "more than %d directories searched; the rest "
			     "are not",
			     MD_DISCOVER_DIRS);
		sc->dirs_noted = 1;
		return 0;
	}
	fd = openat(dirfd, e->d_name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK |
			O_CLOEXEC);
	if (fd < 0) {
		note(sc, MD_NOTE_IGNORED, 0, sub, "cannot open: %s",
		     strerror(errno));
		return 0;
	}
	sc->dirs++;
	/* A different device below us is a medium mounted here. */
	rc = scan_dir(sc, fd, sub, st.st_dev != dev ? sub : medium, st.st_dev,
		      depth + 1);
	close(fd);
	return rc;
}

static int scan_dir(struct scan *sc, int dirfd, const char *path,
		    const char *medium, dev_t dev, unsigned depth)
{
	struct stat st;
	struct dirent *e;
	size_t seen = 0;
	DIR *dh;
	int fd, rc = 0;

	if (fstatat(dirfd, "manifest", &st, AT_SYMLINK_NOFOLLOW) == 0)
		return read_bundle(sc, dirfd, path, medium);
	fd = dup(dirfd);
	if (fd < 0 || !(dh = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		note(sc, MD_NOTE_IGNORED, 0, path, "cannot list: %s",
		     strerror(errno));
		return 0;
	}
	for (;;) {
		errno = 0;
		if (!(e = readdir(dh))) {
			if (errno)
				note(sc, MD_NOTE_IGNORED, STN_E_IO, path,
				     "cannot list: %s (media pulled or "
				     "damaged?)",
				     strerror(errno));
			break;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    is_litter(e->d_name))
			continue;
		if (++seen > CU_DIR_ENTRIES_MAX) {
			note(sc, MD_NOTE_LIMIT, STN_E_TOOBIG, path,
			     "more than %d entries; the rest are not searched",
			     CU_DIR_ENTRIES_MAX);
			break;
		}
		if ((rc = visit_entry(sc, dirfd, path, medium, dev, depth, e)))
			break;
	}
	closedir(dh);
	return rc;
}

static int cmp_bundles(const void *a, const void *b)
{
	const struct md_bundle *x = a, *y = b;
	return strcmp(x->path, y->path);
}

int md_discover(const char *root, unsigned max_depth, struct md_discovery **out,
		struct stn_diag *d)
{
	struct scan sc = {0};
	struct stat st;
	int fd, rc;

	if (strlen(root) >= 2048)
		return stn_fail(d, STN_E_CONFIG, root,
				"media root path too "
				"long");
	/* The root is the administrator's (configuration): it may be a
	 * symlink.  Nothing below it is followed. */
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return stn_fail(d,
				errno == ENOENT || errno == ENOTDIR
				    ? STN_E_CONFIG
				    : STN_E_IO,
				root, "media root: %s", strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = stn_fail(d, STN_E_IO, root, "stat: %s", strerror(errno));
		close(fd);
		return rc;
	}
	sc.disc = calloc(1, sizeof(*sc.disc));
	sc.buf = malloc(CU_RECORD_MAX + 1);
	sc.max_depth = max_depth ? max_depth : MD_DISCOVER_DEPTH;
	if (!sc.disc || !sc.buf) {
		rc = stn_fail(d, STN_E_NOMEM, root, "discovery");
		goto out;
	}
	rc = scan_dir(&sc, fd, root, root, st.st_dev, 0);
	if (rc) {
		rc = stn_fail(d, rc, root, "discovery: %s", stn_strerror(rc));
		goto out;
	}
	/* qsort on an empty list (NULL base) is undefined. */
	if (sc.disc->nbundles > 1)
		qsort(sc.disc->bundles, sc.disc->nbundles,
		      sizeof(struct md_bundle), cmp_bundles);
	*out = sc.disc;
	sc.disc = NULL;
out:
	close(fd);
	free(sc.buf);
	md_discovery_free(sc.disc);
	return rc;
}

void md_discovery_free(struct md_discovery *disc)
{
	if (!disc)
		return;
	free(disc->bundles);
	free(disc->notes);
	free(disc);
}
