/* Plain C against the installed header and library: an error path must report cleanly. */
#include <stdio.h>
#include <string.h>

#include <vidm_rt.h>

int main(void) {
  vidm_rt_generator* gen = NULL;
  vidm_rt_status status = vidm_rt_create("/nonexistent/engine", 0, &gen);
  if (status != VIDM_RT_ERROR_MANIFEST || gen != NULL ||
      strstr(vidm_rt_last_error(), "no such engine directory") == NULL) {
    fprintf(stderr, "unexpected: status %d, error '%s'\n", (int)status, vidm_rt_last_error());
    return 1;
  }
  printf("vidm_rt %s: %s\n", vidm_rt_version(), vidm_rt_last_error());
  return 0;
}
