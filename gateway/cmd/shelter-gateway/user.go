package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/users"
)

// userCmd manages the web console's accounts in the users file. It edits
// the file under its lock, so it may run beside a gateway that reads it.
func userCmd() *cobra.Command {
	var cfgPath, file string
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the web console's accounts · 管理控制台账号",
		Long: `Adds, changes and lists the people who may log in to the web console.
There is no default account: make the first admin with
  shelter-gateway user add <name> --role admin --config <file>
A password is asked for twice on the terminal, read from one line of
standard input with --password-stdin, or generated and printed once with
--generate. A new password, disabling a user or changing their role ends
their open sessions.

添加、修改和列出可以登录控制台的人员。没有默认账号；第一个管理员用
  shelter-gateway user add <用户名> --role admin --config <配置文件>
创建。新密码、停用或更改角色会结束该用户已登录的会话。`,
	}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "", "the gateway's config file (its http.users_file, or users.json in alarms.dir)")
	cmd.PersistentFlags().StringVar(&file, "file", "", "the users file itself, instead of --config")
	open := func() (*users.File, error) {
		if (cfgPath == "") == (file == "") {
			return nil, errors.New("give either --config or --file / 请指定 --config 或 --file")
		}
		path := file
		if path == "" {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return nil, fmt.Errorf("cannot read the config: %w", err)
			}
			path = cfg.UsersPath()
		}
		// The audit log names who at the terminal made the change.
		return users.Open(path).As(who()), nil
	}
	cmd.AddCommand(userAddCmd(open), userPasswdCmd(open), userEnableCmd(open, true), userEnableCmd(open, false), userListCmd(open))
	return cmd
}

type passwordFlags struct {
	stdin, generate bool
}

func (p *passwordFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.stdin, "password-stdin", false, "read the password from one line of standard input")
	cmd.Flags().BoolVar(&p.generate, "generate", false, "generate a password and print it once")
}

// read gets the new password for user name as the flags say.
func (p *passwordFlags) read(cmd *cobra.Command, name string) (string, error) {
	switch {
	case p.stdin && p.generate:
		return "", errors.New("--password-stdin and --generate exclude each other")
	case p.generate:
		pw, err := users.GeneratePassword()
		if err != nil {
			return "", err
		}
		// Shown once, to be handed over: it is stored only as a hash.
		fmt.Fprintf(cmd.OutOrStdout(), "password for %s / %s 的密码: %s\n", name, name, pw)
		return pw, nil
	case p.stdin:
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no terminal to ask for the password: use --password-stdin or --generate / 无终端：请用 --password-stdin 或 --generate")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		return string(b), err
	}
	pw, err := ask("password / 密码: ")
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if err := users.CheckPassword(name, pw); err != nil {
		return "", err
	}
	again, err := ask("again / 再输入一次: ")
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if again != pw {
		return "", errors.New("the passwords differ / 两次输入的密码不一致")
	}
	return pw, nil
}

func userAddCmd(open func() (*users.File, error)) *cobra.Command {
	var role, display string
	var cameras []string
	var pf passwordFlags
	cmd := &cobra.Command{
		Use:   "add NAME --role admin|manager|supervisor|inspector",
		Short: "Add a console user · 添加用户",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := open()
			if err != nil {
				return err
			}
			r, err := users.ParseRole(role)
			if err != nil {
				return err
			}
			if err := users.CheckName(args[0]); err != nil {
				return err
			}
			if len(cameras) > 0 && r != users.RoleSupervisor && r != users.RoleManager {
				return fmt.Errorf("a %s does not watch video: --cameras is for supervisors and managers / %s 角色不能观看视频", r, r)
			}
			pw, err := pf.read(cmd, args[0])
			if err != nil {
				return err
			}
			if err := f.Add(users.User{Name: args[0], Display: display, Role: r, Cameras: cameras}, pw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s) to %s\n", args[0], r, f.Path())
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "admin, manager, supervisor or inspector (required)")
	cmd.Flags().StringVar(&display, "display", "", "the person's name as the console shows it")
	cmd.Flags().StringSliceVar(&cameras, "cameras", nil, `cameras the user may watch ("*": all); supervisors and managers only`)
	_ = cmd.MarkFlagRequired("role")
	pf.register(cmd)
	return cmd
}

func userPasswdCmd(open func() (*users.File, error)) *cobra.Command {
	var pf passwordFlags
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password and end their sessions · 修改密码",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := open()
			if err != nil {
				return err
			}
			if _, err := f.Get(args[0]); err != nil {
				return err
			}
			pw, err := pf.read(cmd, args[0])
			if err != nil {
				return err
			}
			if err := f.SetPassword(args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed; their sessions are ended\n", args[0])
			return nil
		},
	}
	pf.register(cmd)
	return cmd
}

func userEnableCmd(open func() (*users.File, error), disable bool) *cobra.Command {
	use, short, done := "enable NAME", "Let a disabled user log in again · 启用用户", "enabled"
	if disable {
		use, short, done = "disable NAME", "Stop a user from logging in and end their sessions · 停用用户", "disabled; their sessions are ended"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := open()
			if err != nil {
				return err
			}
			if err := f.SetDisabled(args[0], disable); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", args[0], done)
			return nil
		},
	}
}

func userListCmd(open func() (*users.File, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the console users · 列出用户",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := open()
			if err != nil {
				return err
			}
			us, err := f.List()
			if err != nil {
				return err
			}
			if len(us) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no users in %s / 没有用户\n", f.Path())
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDISPLAY\tROLE\tCAMERAS\tSTATE\tPASSWORD CHANGED")
			for _, u := range us {
				state := "active"
				if u.Disabled {
					state = "disabled"
				}
				cams := strings.Join(u.Cameras, ",")
				if cams == "" {
					cams = "-"
				}
				display := u.Display
				if display == "" {
					display = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, display, u.Role, cams, state, u.PasswordChanged.Format("2006-01-02 15:04 MST"))
			}
			return tw.Flush()
		},
	}
}
