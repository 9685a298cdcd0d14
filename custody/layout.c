/* custody/layout.c: the name rules of a bundle's files.  Each rule says
 * which names are ours; anything else in a bundle is ignored by everyone,
 * so no module can take a file another would refuse or miss. */
#include "custody/layout.h"

#include <string.h>

#include "custody/record.h"

/* Does name end in suffix, with a non-empty stem?  Returns the stem's
 * length, or 0. */
static size_t stem_len(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);

	if (n <= k || strcmp(name + n - k, suffix) != 0)
		return 0;
	return n - k;
}

const char *cu_layout_image_name(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > CU_FILE_NAME_MAX || !cu_chars_in(name, CU_FILE_CHARS))
		return "image file name must be 1 to 128 of [A-Za-z0-9._-]";
	/* No hidden files, no "." or "..": a manifest names plain files in
	 * the bundle directory and nothing else. */
	if (name[0] == '.')
		return "image file name must not start with '.'";
	/* The manifest and its signature files share the directory; an image
	 * may not take one of their names. */
	if (strcmp(name, CU_LAYOUT_MANIFEST) == 0 ||
	    strncmp(name, CU_LAYOUT_MANIFEST ".", 9) == 0)
		return "image file name must not be 'manifest' or start with "
		       "'manifest.'";
	return NULL;
}

int cu_layout_manifest_name(const char *name)
{
	return strcmp(name, CU_LAYOUT_MANIFEST) == 0;
}

int cu_layout_custody_name(const char *name, unsigned long *index)
{
	size_t n = stem_len(name, ".rec");
	unsigned long v = 0;

	if (n < 2 || n > 8)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(name[i] - '0');
	}
	if (index)
		*index = v;
	return 1;
}

int cu_layout_token_name(const char *name)
{
	size_t n = stem_len(name, ".tok");
	return n && cu_label_ok(name, n);
}

int cu_layout_crl_name(const char *name)
{
	size_t n = stem_len(name, ".pem");
	return n && cu_label_ok(name, n);
}

/* formats §10: keys/NAME.key, NAME [a-z0-9][a-z0-9.-]{0,63} (a section
 * label is one such name; dots let NAME say image and recipient). */
int cu_layout_key_name(const char *name)
{
	size_t n = stem_len(name, ".key");

	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 (i > 0 && (c == '.' || c == '-'));
		if (!ok)
			return 0;
	}
	return 1;
}

/* F.SUFFIX or F.LABEL.SUFFIX, for a file is_primary accepts. */
static int sidecar_of(const char *name, const char *suffix,
		      int (*is_primary)(const char *),
		      char primary[CU_LAYOUT_NAME_MAX])
{
	size_t n = stem_len(name, suffix);
	const char *dot;

	if (!n || n >= CU_LAYOUT_NAME_MAX)
		return 0;
	memcpy(primary, name, n);
	primary[n] = '\0';
	if (is_primary(primary))
		return 1;
	dot = strrchr(primary, '.');
	if (!dot || !cu_label_ok(dot + 1, strlen(dot + 1)))
		return 0;
	primary[dot - primary] = '\0';
	return is_primary(primary);
}

int cu_layout_sig_of(const char *name, int (*is_primary)(const char *),
		     char primary[CU_LAYOUT_NAME_MAX])
{
	return sidecar_of(name, ".sig", is_primary, primary);
}

int cu_layout_chain_of(const char *name, int (*is_primary)(const char *),
		       char primary[CU_LAYOUT_NAME_MAX])
{
	return sidecar_of(name, ".pem", is_primary, primary);
}
