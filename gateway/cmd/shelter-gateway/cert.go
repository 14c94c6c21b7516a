package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shelterwatch/shelterwatch/internal/tlsfiles"
)

// The files `cert` writes in its directory.
const (
	caCertName     = "ca.crt"
	caKeyName      = "ca.key"
	serverCertName = "server.crt"
	serverKeyName  = "server.key"
)

func certCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Make a facility CA and the gateway's HTTPS certificate, for a LAN without a public name",
		Long: `Browsers and phones trust a gateway on the facility's LAN once its CA is
installed on them. "cert ca" makes the facility CA (once); "cert server"
makes the gateway's certificate for its names and addresses, signed by it,
and is run again to renew it (--force) or when an address changes. A
running gateway serves a new certificate within seconds, without a restart.`,
	}
	cmd.AddCommand(certCACmd(), certServerCmd())
	return cmd
}

func certCACmd() *cobra.Command {
	var dir, name string
	var hosts []string
	var force bool
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Make the facility CA (ECDSA P-256, 10 years) to install on staff phones and PCs",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				name = "ShelterWatch CA (" + hostname() + ")"
			}
			if len(hosts) == 0 {
				hosts = hostNames()
			}
			certFile, keyFile := filepath.Join(dir, caCertName), filepath.Join(dir, caKeyName)
			if err := mayWrite(force, certFile, keyFile); err != nil {
				return err
			}
			now := time.Now()
			c, k, err := tlsfiles.NewCA(name, hosts, now)
			if err != nil {
				return err
			}
			if err := writeFiles(dir, []file{{keyFile, k, 0o600}, {certFile, c, 0o644}}); err != nil {
				return err
			}
			fp, err := tlsfiles.Fingerprint(c)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, `Facility CA written / 机构根证书已生成:
  certificate / 证书: %s   (install on staff phones and PCs / 安装到工作人员的手机和电脑)
  key / 私钥:         %s   (0600: never copy it off the gateway / 切勿复制到网关以外)
  name / 名称:        %s
  valid until / 有效期至: %s
  SHA-256 fingerprint / 指纹: %s
  may certify / 可签发: the LAN's private addresses, .local .lan .internal .home.arpa, and %s

`, certFile, keyFile, name, now.Add(tlsfiles.CAValidity).Format(time.DateOnly), fp, strings.Join(hosts, ", "))
			printInstall(w, certFile)
			fmt.Fprintf(w, "\nNext / 下一步: shelter-gateway cert server --dir %s\n", dir)
			if force {
				fmt.Fprintln(w, "\nA new CA: every phone and PC must install it again / 新根证书：所有手机和电脑须重新安装.")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "/etc/shelterwatch/tls", "directory for "+caCertName+" and "+caKeyName)
	cmd.Flags().StringVar(&name, "name", "", `the CA's name as phones show it (default "ShelterWatch CA (<hostname>)")`)
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "names and addresses beyond the LAN the CA may certify, e.g. a router's public address (default: this machine's names)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing CA (every device must then install the new one)")
	return cmd
}

func certServerCmd() *cobra.Command {
	var dir string
	var hosts []string
	var force bool
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Make the gateway's HTTPS certificate (2 years), signed by the facility CA",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(hosts) == 0 {
				hosts = append(hostNames(), lanAddresses()...)
			}
			caCert, err := os.ReadFile(filepath.Join(dir, caCertName))
			if err != nil {
				return fmt.Errorf("read the facility CA (make it with: shelter-gateway cert ca --dir %s): %w", dir, err)
			}
			caKey, err := os.ReadFile(filepath.Join(dir, caKeyName))
			if err != nil {
				return fmt.Errorf("read the facility CA's key: %w", err)
			}
			certFile, keyFile := filepath.Join(dir, serverCertName), filepath.Join(dir, serverKeyName)
			if err := mayWrite(force, certFile, keyFile); err != nil {
				return err
			}
			now := time.Now()
			c, k, err := tlsfiles.IssueServer(caCert, caKey, hosts, now)
			if err != nil {
				return err
			}
			// The key first: a gateway looking between the two renames
			// refuses the pair once and takes it at its next look.
			if err := writeFiles(dir, []file{{keyFile, k, 0o600}, {certFile, c, 0o644}}); err != nil {
				return err
			}
			until := now.Add(tlsfiles.ServerValidity).Format(time.DateOnly)
			fmt.Fprintf(cmd.OutOrStdout(), `Server certificate written / 服务器证书已生成:
  certificate / 证书: %s
  key / 私钥:         %s   (0600)
  for / 适用于:       %s
  valid until / 有效期至: %s

In the gateway's config / 网关配置文件:
  http:
    tls_cert_file: %s
    tls_key_file: %s

A running gateway serves it within seconds, without a restart / 运行中的网关数秒内自动启用，无需重启.
Staff open https://%s:<port>/ once the CA (%s) is installed / 安装根证书后访问.
Renew before %s / 请在此日期前续期: shelter-gateway cert server --dir %s --force
`, certFile, keyFile, strings.Join(hosts, ", "), until, certFile, keyFile, hosts[0], filepath.Join(dir, caCertName), until, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "/etc/shelterwatch/tls", "directory of the facility CA; "+serverCertName+" and "+serverKeyName+" are written there")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "DNS names and IP addresses staff use to reach the gateway (default: this machine's name and LAN addresses)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing certificate (renewal)")
	return cmd
}

// printInstall tells, briefly, how to trust the CA on the devices staff
// use.
func printInstall(w io.Writer, caFile string) {
	fmt.Fprintf(w, `Install %s on each device, and check the fingerprint it shows / 在每台设备上安装并核对指纹:
  Android: Settings › Security › Encryption & credentials › Install a certificate › CA certificate
           设置 › 安全 › 加密与凭据 › 安装证书 › CA 证书
  iPhone/iPad: open the file (AirDrop or mail), Settings › General › VPN & Device Management › install;
           then Settings › General › About › Certificate Trust Settings › turn on full trust
           打开文件后在 设置 › 通用 › VPN与设备管理 中安装，再到 设置 › 通用 › 关于本机 › 证书信任设置 中启用完全信任
  Windows: double-click › Install Certificate › Local Machine › Trusted Root Certification Authorities
           双击 › 安装证书 › 本地计算机 › 受信任的根证书颁发机构
  macOS:   open in Keychain Access (System) › Trust › Always Trust / 钥匙串访问 › 信任 › 始终信任
  Firefox keeps its own list: Settings › Privacy & Security › Certificates › View Certificates › Authorities › Import
`, caFile)
}

// mayWrite refuses to replace existing files unless forced: a key
// overwritten by mistake cannot be had back.
func mayWrite(force bool, files ...string) error {
	if force {
		return nil
	}
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("%s exists; not replacing it without --force", f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s: %w", f, err)
		}
	}
	return nil
}

type file struct {
	path string
	data []byte
	perm os.FileMode
}

// writeFiles writes each file whole: to a temporary file in dir, synced,
// then renamed into place, so a gateway reading it never sees half.
func writeFiles(dir string, files []file) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, f := range files {
		tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*")
		if err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		err = tmp.Chmod(f.perm)
		if err == nil {
			_, err = tmp.Write(f.data)
		}
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), f.path)
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "gateway"
	}
	return strings.ToLower(h)
}

// hostNames are the names this machine is reached by on a LAN: its host
// name and, for a bare one, its mDNS name.
func hostNames() []string {
	h := hostname()
	if strings.Contains(h, ".") {
		return []string{h}
	}
	return []string{h, h + ".local"}
}

// lanAddresses are this machine's private addresses (those a facility CA
// may certify).
func lanAddresses() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.IsPrivate() {
			out = append(out, n.IP.String())
		}
	}
	return out
}
