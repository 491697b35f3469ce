/*
 * peercred: reports the uid, gid and pid of the process at the other end of a connected Unix
 * socket, so keyward's daemon can refuse other uids and name the caller in its audit log.
 *
 *   getPeerCred(fd: number): { uid: number, gid: number, pid: number }
 *
 * Linux: getsockopt(SO_PEERCRED). macOS: getpeereid() + getsockopt(SOL_LOCAL, LOCAL_PEERPID).
 * Both record the credentials at connect() time, so a peer that later changes uid or execs
 * something else is still reported as it was when it connected (which is what access control
 * wants: the kernel, not the peer, says who connected).
 *
 * pid is 0 when the kernel cannot give one (a peer in another pid namespace on Linux, or a macOS
 * without LOCAL_PEERPID); the TypeScript side turns that into null.
 *
 *   disableDumps(): { dumpable: boolean, coreLimit: number }
 *
 * Hardens the calling process (the daemon, at start): no core dump (RLIMIT_CORE 0, both
 * platforms) and, on Linux, PR_SET_DUMPABLE 0, which also keeps processes of the same uid from
 * attaching with ptrace (unless they hold CAP_SYS_PTRACE) and from reading /proc/<pid>/mem or
 * environ. Reports what holds afterwards; throws when a call fails.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* struct ucred */
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <node_api.h>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#if !defined(__linux__) && !defined(__APPLE__)
#error "peercred supports Linux and macOS only"
#endif

/* Names the errno values a caller may meet here; anything else gets a generic code. */
static const char *errno_code(int err) {
  switch (err) {
  case EBADF: return "EBADF";
  case ENOTSOCK: return "ENOTSOCK";
  case ENOTCONN: return "ENOTCONN";
  case EINVAL: return "EINVAL";
  case ENOPROTOOPT: return "ENOPROTOOPT";
  case EAFNOSUPPORT: return "EAFNOSUPPORT";
  default: return "EPEERCRED";
  }
}

/* Throws an Error whose code is the errno name and whose errno property is the number. */
static void throw_errno(napi_env env, const char *call, int err) {
  char message[160];
  napi_value code_value, message_value, error, errno_value;
  const char *code = errno_code(err);
  snprintf(message, sizeof message, "%s failed: %s", call, strerror(err));
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_error(env, code_value, message_value, &error) != napi_ok) {
    napi_throw_error(env, code, message);
    return;
  }
  if (napi_create_int32(env, err, &errno_value) == napi_ok) {
    napi_set_named_property(env, error, "errno", errno_value);
  }
  napi_throw(env, error);
}

/*
 * Refuses anything but a Unix-domain socket: on Linux, SO_PEERCRED on a TCP socket succeeds and
 * reports the overflow uid (65534) with pid 0, which must never be mistaken for a real peer.
 */
static int check_unix_socket(napi_env env, int fd) {
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  memset(&addr, 0, sizeof addr);
  if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
    throw_errno(env, "getsockname", errno);
    return 0;
  }
  if (addr.ss_family != AF_UNIX) {
    throw_errno(env, "getsockname (not a Unix socket)", EAFNOSUPPORT);
    return 0;
  }
  return 1;
}

static int read_peer(napi_env env, int fd, uid_t *uid, gid_t *gid, pid_t *pid) {
#if defined(__linux__)
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
    return 0;
  }
  *uid = cred.uid;
  *gid = cred.gid;
  *pid = cred.pid;
  return 1;
#else
  pid_t peer_pid = 0;
  socklen_t len = sizeof peer_pid;
  if (getpeereid(fd, uid, gid) != 0) {
    throw_errno(env, "getpeereid", errno);
    return 0;
  }
#if defined(LOCAL_PEERPID)
  /* The pid is for the audit log only; its absence must not cost the uid check. */
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &peer_pid, &len) != 0) peer_pid = 0;
#else
  (void)len;
#endif
  *pid = peer_pid;
  return 1;
#endif
}

static int set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value number;
  return napi_create_double(env, value, &number) == napi_ok &&
         napi_set_named_property(env, object, name, number) == napi_ok;
}

static napi_value get_peer_cred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  int32_t fd;
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getPeerCred expects a file descriptor (integer >= 0)");
    return NULL;
  }
  if (!check_unix_socket(env, fd)) return NULL;
  if (!read_peer(env, fd, &uid, &gid, &pid)) return NULL;

  if (napi_create_object(env, &result) != napi_ok || !set_number(env, result, "uid", (double)uid) ||
      !set_number(env, result, "gid", (double)gid) || !set_number(env, result, "pid", (double)pid)) {
    napi_throw_error(env, "EPEERCRED", "could not build the peer credential object");
    return NULL;
  }
  return result;
}

static napi_value disable_dumps(napi_env env, napi_callback_info info) {
  struct rlimit none = {0, 0};
  int dumpable = 1;
  napi_value result, flag;
  (void)info;
  if (setrlimit(RLIMIT_CORE, &none) != 0) {
    throw_errno(env, "setrlimit(RLIMIT_CORE)", errno);
    return NULL;
  }
#if defined(__linux__)
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    throw_errno(env, "prctl(PR_SET_DUMPABLE)", errno);
    return NULL;
  }
  dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
#endif
  if (napi_create_object(env, &result) != napi_ok || napi_get_boolean(env, dumpable != 0, &flag) != napi_ok ||
      napi_set_named_property(env, result, "dumpable", flag) != napi_ok ||
      !set_number(env, result, "coreLimit", 0)) {
    napi_throw_error(env, "EPEERCRED", "could not build the result object");
    return NULL;
  }
  return result;
}

static int export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!export_function(env, exports, "getPeerCred", get_peer_cred) ||
      !export_function(env, exports, "disableDumps", disable_dumps)) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
