/* cmd_session.c: placeholder */
typedef int cgw_placeholder_;
