#include "testutil.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int tu_checks = 0;
int tu_failures = 0;

int tu_finish(const char* suite) {
  printf("%s: %d checks, %d failures\n", suite, tu_checks, tu_failures);
  if (tu_checks == 0) {
    fprintf(stderr, "%s: nothing was checked\n", suite);
    return 1;
  }
  return tu_failures == 0 ? 0 : 1;
}

static char g_file[1 << 18];
static tv_vector_t g_vector;

static char* trim(char* s) {
  char* end;
  while (*s == ' ' || *s == '\t') ++s;
  end = s + strlen(s);
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) *--end = '\0';
  return s;
}

int tv_load(const char* path, const char* kind, tv_visit_fn visit, void* ctx) {
  FILE* f = fopen(path, "rb");
  size_t n;
  char* line;
  char* next;
  int in_block = 0, count = 0;
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", path);
    return -1;
  }
  n = fread(g_file, 1, sizeof(g_file) - 1, f);
  fclose(f);
  if (n == sizeof(g_file) - 1) {
    fprintf(stderr, "%s is larger than the test's buffer\n", path);
    return -1;
  }
  g_file[n] = '\0';
  for (line = g_file; line != NULL && *line != '\0'; line = next) {
    next = strchr(line, '\n');
    if (next != NULL) *next++ = '\0';
    line = trim(line);
    if (!in_block) {
      char k[32], name[64];
      if (strncmp(line, "```vector ", 10) == 0 && sscanf(line + 10, "%31s %63s", k, name) == 2 &&
          strcmp(k, kind) == 0) {
        memset(&g_vector, 0, sizeof(g_vector));
        strcpy(g_vector.kind, k);
        strcpy(g_vector.name, name);
        in_block = 1;
      }
      continue;
    }
    if (strncmp(line, "```", 3) == 0) {
      visit(&g_vector, ctx);
      ++count;
      in_block = 0;
      continue;
    }
    if (*line == '\0' || *line == '#') continue;
    if (g_vector.num_lines == TV_MAX_LINES || strlen(line) >= TV_MAX_LINE) {
      fprintf(stderr, "vector %s: too many or too long lines for the test's buffers\n", g_vector.name);
      return -1;
    }
    {
      tv_line_t* l = &g_vector.lines[g_vector.num_lines++];
      if (line[0] == '>' || line[0] == '<') {
        l->key[0] = line[0];
        strcpy(l->value, trim(line + 1));
      } else {
        char* colon = strchr(line, ':');
        if (colon == NULL || (size_t)(colon - line) >= sizeof(l->key)) {
          fprintf(stderr, "vector %s: malformed line '%s'\n", g_vector.name, line);
          return -1;
        }
        memcpy(l->key, line, (size_t)(colon - line));
        strcpy(l->value, trim(colon + 1));
      }
    }
  }
  if (in_block) {
    fprintf(stderr, "%s: unterminated vector block %s\n", path, g_vector.name);
    return -1;
  }
  return count;
}

const char* tv_get(const tv_vector_t* vector, const char* key) {
  int i;
  for (i = 0; i < vector->num_lines; ++i) {
    if (strcmp(vector->lines[i].key, key) == 0) return vector->lines[i].value;
  }
  return NULL;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (char)toupper((unsigned char)c);
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int tv_hex(const char* text, uint8_t* out, uint8_t* mask, size_t capacity) {
  size_t n = 0;
  while (*text != '\0') {
    if (*text == ' ') {
      ++text;
      continue;
    }
    if (n == capacity || text[1] == '\0') return -1;
    if (text[0] == '?' && text[1] == '?') {
      out[n] = 0;
      if (mask != NULL) mask[n] = 0;
    } else {
      int hi = hex_digit(text[0]), lo = hex_digit(text[1]);
      if (hi < 0 || lo < 0) return -1;
      out[n] = (uint8_t)(hi * 16 + lo);
      if (mask != NULL) mask[n] = 1;
    }
    ++n;
    text += 2;
    if (*text != '\0' && *text != ' ') return -1;
  }
  return (int)n;
}
