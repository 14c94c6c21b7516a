package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/internal/audit"
)

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work with the audit log",
	}
	cmd.AddCommand(auditVerifyCmd())
	return cmd
}

func auditVerifyCmd() *cobra.Command {
	var cfgPath, dir string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain across every segment and report the first broken link",
		Long: `Walks the audit log's segments oldest first and checks that every entry
carries the hash of the entry before it. Prints where the chain begins, how
many entries it checked and the hash of the newest entry (note it somewhere
else to find out later whether entries were cut off the end). Exits non-zero
at the first broken link, naming the file, the line and what broke.

It only reads the files, so it may run beside a gateway that is writing.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (cfgPath == "") == (dir == "") {
				return errors.New("give either --config or --dir")
			}
			path := filepath.Join(dir, audit.FileName)
			if cfgPath != "" {
				cfg, err := config.Load(cfgPath)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					return errors.New("cannot read the config")
				}
				path = cfg.Alarms.AuditPath()
			}
			r, err := audit.Verify(path)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "files: %d, oldest %s\n", len(r.Files), r.Files[0])
			if r.Anchor != "" {
				fmt.Fprintf(out, "chain begins at: %s\n", r.Anchor)
			}
			if r.Unchained > 0 {
				fmt.Fprintf(out, "entries before the chain (no hash, written by an older version): %d\n", r.Unchained)
			}
			if r.TornTail {
				fmt.Fprintln(out, "the current file ends in a partial line (an append in progress, or cut short by a crash); not checked")
			}
			if r.Break != nil {
				fmt.Fprintf(out, "entries checked before the break: %d\n", r.Chained)
				fmt.Fprintf(out, "BROKEN at %s\n", r.Break)
				return fmt.Errorf("audit log chain broken at %s line %d", r.Break.File, r.Break.Line)
			}
			fmt.Fprintf(out, "entries checked: %d\n", r.Chained)
			if r.Head != "" {
				fmt.Fprintf(out, "head: %s (%s line %d)\n", r.Head, r.HeadFile, r.HeadLine)
			}
			fmt.Fprintln(out, "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "gateway config file: check the audit log under its alarms.dir")
	cmd.Flags().StringVar(&dir, "dir", "", "directory holding audit.jsonl (the gateway's alarms.dir)")
	return cmd
}
