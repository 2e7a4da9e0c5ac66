/* cmd_token.c: placeholder */
typedef int cgw_placeholder_;
