/**
 * The kernel's own headers are the spec for every struct fieldrelay hands to ioctl(2): a small C
 * program, compiled here with the system's gcc against linux/i2c.h, linux/i2c-dev.h and
 * linux/gpio.h, prints sizes, offsets, ioctl numbers and byte dumps of filled-in structs; the
 * TypeScript encoders must produce the same bytes.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as gpio from "../../src/hal/gpio/uapi.ts";
import * as i2c from "../../src/hal/i2c/uapi.ts";
import * as rtc from "../../src/hal/rtc/uapi.ts";
import { GCC, missing } from "../support/tools.ts";

const PROGRAM = String.raw`
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <linux/i2c.h>
#include <linux/i2c-dev.h>
#include <linux/gpio.h>
#include <linux/rtc.h>

static void hex(const char *name, const void *p, size_t n) {
  printf("hex %s ", name);
  for (size_t i = 0; i < n; i++) printf("%02x", ((const unsigned char *)p)[i]);
  printf("\n");
}
#define SIZE(t) printf("size %s %zu\n", #t, sizeof(struct t))
#define OFF(t, f) printf("offset %s.%s %zu\n", #t, #f, offsetof(struct t, f))
#define NUM(n) printf("const %s %lu\n", #n, (unsigned long)(n))
#define PTR(x) ((void *)(uintptr_t)(x))

int main(void) {
  SIZE(i2c_msg); OFF(i2c_msg, addr); OFF(i2c_msg, flags); OFF(i2c_msg, len); OFF(i2c_msg, buf);
  SIZE(i2c_rdwr_ioctl_data); OFF(i2c_rdwr_ioctl_data, msgs); OFF(i2c_rdwr_ioctl_data, nmsgs);
  SIZE(i2c_smbus_ioctl_data); OFF(i2c_smbus_ioctl_data, read_write); OFF(i2c_smbus_ioctl_data, command);
  OFF(i2c_smbus_ioctl_data, size); OFF(i2c_smbus_ioctl_data, data);
  printf("size i2c_smbus_data %zu\n", sizeof(union i2c_smbus_data));
  NUM(I2C_SLAVE); NUM(I2C_SLAVE_FORCE); NUM(I2C_FUNCS); NUM(I2C_RDWR); NUM(I2C_SMBUS);
  NUM(I2C_M_RD); NUM(I2C_RDWR_IOCTL_MAX_MSGS); NUM(I2C_FUNC_I2C); NUM(I2C_FUNC_SMBUS_QUICK);
  NUM(I2C_FUNC_SMBUS_READ_BYTE); NUM(I2C_SMBUS_READ); NUM(I2C_SMBUS_WRITE); NUM(I2C_SMBUS_QUICK);
  NUM(I2C_SMBUS_BYTE);

  struct i2c_msg msgs[2];
  memset(msgs, 0, sizeof msgs);
  msgs[0].addr = 0x76; msgs[0].flags = 0; msgs[0].len = 1; msgs[0].buf = PTR(0x1122334455667788ULL);
  msgs[1].addr = 0x76; msgs[1].flags = I2C_M_RD; msgs[1].len = 26; msgs[1].buf = PTR(0x0102030405060708ULL);
  hex("i2c_msgs", msgs, sizeof msgs);
  struct i2c_rdwr_ioctl_data rdwr; memset(&rdwr, 0, sizeof rdwr);
  rdwr.msgs = PTR(0x00007f0012345678ULL); rdwr.nmsgs = 2;
  hex("i2c_rdwr_ioctl_data", &rdwr, sizeof rdwr);
  struct i2c_smbus_ioctl_data smbus; memset(&smbus, 0, sizeof smbus);
  smbus.read_write = I2C_SMBUS_READ; smbus.command = 0xd0; smbus.size = I2C_SMBUS_BYTE; smbus.data = PTR(0x00007f00abcdef01ULL);
  hex("i2c_smbus_ioctl_data", &smbus, sizeof smbus);

  SIZE(gpiochip_info); SIZE(gpio_v2_line_attribute); SIZE(gpio_v2_line_config_attribute);
  SIZE(gpio_v2_line_config); SIZE(gpio_v2_line_request); SIZE(gpio_v2_line_info);
  SIZE(gpio_v2_line_values); SIZE(gpio_v2_line_event);
  OFF(gpio_v2_line_request, consumer); OFF(gpio_v2_line_request, config); OFF(gpio_v2_line_request, num_lines);
  OFF(gpio_v2_line_request, event_buffer_size); OFF(gpio_v2_line_request, fd);
  OFF(gpio_v2_line_info, offset); OFF(gpio_v2_line_info, flags); OFF(gpio_v2_line_info, attrs);
  OFF(gpio_v2_line_event, seqno); OFF(gpio_v2_line_event, line_seqno);
  NUM(GPIO_GET_CHIPINFO_IOCTL); NUM(GPIO_V2_GET_LINEINFO_IOCTL); NUM(GPIO_V2_GET_LINE_IOCTL);
  NUM(GPIO_V2_LINE_SET_CONFIG_IOCTL); NUM(GPIO_V2_LINE_GET_VALUES_IOCTL); NUM(GPIO_V2_LINE_SET_VALUES_IOCTL);
  NUM(GPIO_V2_LINE_FLAG_USED); NUM(GPIO_V2_LINE_FLAG_ACTIVE_LOW); NUM(GPIO_V2_LINE_FLAG_INPUT);
  NUM(GPIO_V2_LINE_FLAG_OUTPUT); NUM(GPIO_V2_LINE_FLAG_EDGE_RISING); NUM(GPIO_V2_LINE_FLAG_EDGE_FALLING);
  NUM(GPIO_V2_LINE_FLAG_OPEN_DRAIN); NUM(GPIO_V2_LINE_FLAG_OPEN_SOURCE); NUM(GPIO_V2_LINE_FLAG_BIAS_PULL_UP);
  NUM(GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN); NUM(GPIO_V2_LINE_FLAG_BIAS_DISABLED);
  NUM(GPIO_V2_LINE_FLAG_EVENT_CLOCK_REALTIME); NUM(GPIO_V2_LINE_FLAG_EVENT_CLOCK_HTE);
  NUM(GPIO_V2_LINE_ATTR_ID_FLAGS); NUM(GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES); NUM(GPIO_V2_LINE_ATTR_ID_DEBOUNCE);
  NUM(GPIO_V2_LINE_EVENT_RISING_EDGE); NUM(GPIO_V2_LINE_EVENT_FALLING_EDGE);

  struct gpio_v2_line_request req; memset(&req, 0, sizeof req);
  req.offsets[0] = 17; req.offsets[1] = 27;
  strcpy(req.consumer, "fieldrelay");
  req.config.flags = GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_BIAS_PULL_UP;
  req.config.num_attrs = 2;
  req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_DEBOUNCE;
  req.config.attrs[0].attr.debounce_period_us = 5000;
  req.config.attrs[0].mask = 0x1;
  req.config.attrs[1].attr.id = GPIO_V2_LINE_ATTR_ID_FLAGS;
  req.config.attrs[1].attr.flags = GPIO_V2_LINE_FLAG_OUTPUT | GPIO_V2_LINE_FLAG_ACTIVE_LOW;
  req.config.attrs[1].mask = 0x2;
  req.num_lines = 2; req.event_buffer_size = 32;
  hex("gpio_v2_line_request", &req, sizeof req);

  struct gpio_v2_line_config cfg; memset(&cfg, 0, sizeof cfg);
  cfg.flags = GPIO_V2_LINE_FLAG_OUTPUT;
  cfg.num_attrs = 1;
  cfg.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
  cfg.attrs[0].attr.values = 0x5;
  cfg.attrs[0].mask = 0x7;
  hex("gpio_v2_line_config", &cfg, sizeof cfg);

  struct gpio_v2_line_values vals; memset(&vals, 0, sizeof vals);
  vals.bits = 0x8000000000000001ULL; vals.mask = 0xffffffffffffffffULL;
  hex("gpio_v2_line_values", &vals, sizeof vals);

  struct gpiochip_info chip; memset(&chip, 0, sizeof chip);
  strcpy(chip.name, "gpiochip0"); strcpy(chip.label, "pinctrl-bcm2711"); chip.lines = 58;
  hex("gpiochip_info", &chip, sizeof chip);

  struct gpio_v2_line_info info; memset(&info, 0, sizeof info);
  strcpy(info.name, "GPIO17"); strcpy(info.consumer, "fieldrelay"); info.offset = 17;
  info.flags = GPIO_V2_LINE_FLAG_USED | GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_BIAS_PULL_UP;
  info.num_attrs = 2;
  info.attrs[0].id = GPIO_V2_LINE_ATTR_ID_DEBOUNCE; info.attrs[0].debounce_period_us = 10000;
  info.attrs[1].id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES; info.attrs[1].values = 1;
  hex("gpio_v2_line_info", &info, sizeof info);

  struct gpio_v2_line_info query; memset(&query, 0, sizeof query); query.offset = 27;
  hex("gpio_v2_line_info_query", &query, sizeof query);

  struct gpio_v2_line_event ev[2]; memset(ev, 0, sizeof ev);
  ev[0].timestamp_ns = 1234567890123456789ULL; ev[0].id = GPIO_V2_LINE_EVENT_RISING_EDGE; ev[0].offset = 17;
  ev[0].seqno = 41; ev[0].line_seqno = 7;
  ev[1].timestamp_ns = 1234567890123999999ULL; ev[1].id = GPIO_V2_LINE_EVENT_FALLING_EDGE; ev[1].offset = 27;
  ev[1].seqno = 4294967295U; ev[1].line_seqno = 8;
  hex("gpio_v2_line_event", ev, sizeof ev);

  SIZE(rtc_time); OFF(rtc_time, tm_sec); OFF(rtc_time, tm_mday); OFF(rtc_time, tm_year); OFF(rtc_time, tm_isdst);
  NUM(RTC_SET_TIME); NUM(RTC_RD_TIME);
  struct rtc_time tm; memset(&tm, 0, sizeof tm);
  tm.tm_sec = 7; tm.tm_min = 8; tm.tm_hour = 23; tm.tm_mday = 30; tm.tm_mon = 10; tm.tm_year = 126;
  tm.tm_wday = 1; tm.tm_yday = 333; tm.tm_isdst = 0;
  hex("rtc_time", &tm, sizeof tm);
  return 0;
}
`;

const skip = missing(GCC);
const facts = new Map<string, string>();
let dir = "";

beforeAll(() => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "fr-layout-"));
  writeFileSync(join(dir, "layout.c"), PROGRAM);
  execFileSync("gcc", ["-std=c11", "-Wall", "-Werror", "-o", join(dir, "layout"), join(dir, "layout.c")]);
  for (const line of execFileSync(join(dir, "layout"), { encoding: "utf8" }).trim().split("\n")) {
    const [kind, name, value] = line.split(" ");
    facts.set(`${kind} ${name}`, value!);
  }
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const num = (key: string) => {
  const v = facts.get(key);
  if (v === undefined) throw new Error(`the C program printed no "${key}"`);
  return Number(v);
};
const i2cConsts = new Map<string, unknown>(Object.entries(i2c));
const gpioConsts = new Map<string, unknown>(Object.entries(gpio));
const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe.skipIf(skip)("i2c-dev layouts against linux/i2c.h and linux/i2c-dev.h", () => {
  it("has the kernel's struct sizes and field offsets", () => {
    expect(num("size i2c_msg")).toBe(i2c.I2C_MSG_SIZE);
    expect(num("offset i2c_msg.addr")).toBe(0);
    expect(num("offset i2c_msg.flags")).toBe(2);
    expect(num("offset i2c_msg.len")).toBe(4);
    expect(num("offset i2c_msg.buf")).toBe(8);
    expect(num("size i2c_rdwr_ioctl_data")).toBe(i2c.I2C_RDWR_IOCTL_DATA_SIZE);
    expect(num("offset i2c_rdwr_ioctl_data.nmsgs")).toBe(8);
    expect(num("size i2c_smbus_ioctl_data")).toBe(i2c.I2C_SMBUS_IOCTL_DATA_SIZE);
    expect(num("offset i2c_smbus_ioctl_data.size")).toBe(4);
    expect(num("offset i2c_smbus_ioctl_data.data")).toBe(8);
    expect(num("size i2c_smbus_data")).toBe(i2c.I2C_SMBUS_DATA_SIZE);
  });

  it("has the kernel's ioctl numbers and flags", () => {
    for (const name of [
      "I2C_SLAVE",
      "I2C_SLAVE_FORCE",
      "I2C_FUNCS",
      "I2C_RDWR",
      "I2C_SMBUS",
      "I2C_M_RD",
      "I2C_RDWR_IOCTL_MAX_MSGS",
      "I2C_FUNC_I2C",
      "I2C_FUNC_SMBUS_QUICK",
      "I2C_FUNC_SMBUS_READ_BYTE",
      "I2C_SMBUS_READ",
      "I2C_SMBUS_WRITE",
      "I2C_SMBUS_QUICK",
      "I2C_SMBUS_BYTE",
    ] as const) {
      expect([name, num(`const ${name}`)]).toEqual([name, i2cConsts.get(name)]);
    }
  });

  it("encodes a write-then-read pair of i2c_msg byte for byte as gcc does", () => {
    const bytes = i2c.encodeI2cMsgs([
      { addr: 0x76, flags: 0, len: 1, buf: 0x1122334455667788n },
      { addr: 0x76, flags: i2c.I2C_M_RD, len: 26, buf: 0x0102030405060708n },
    ]);
    expect(hexOf(bytes)).toBe(facts.get("hex i2c_msgs"));
  });

  it("encodes i2c_rdwr_ioctl_data and i2c_smbus_ioctl_data as gcc does", () => {
    expect(hexOf(i2c.encodeRdwrData(0x00007f0012345678n, 2))).toBe(facts.get("hex i2c_rdwr_ioctl_data"));
    expect(
      hexOf(i2c.encodeSmbusData(i2c.I2C_SMBUS_READ, 0xd0, i2c.I2C_SMBUS_BYTE, 0x00007f00abcdef01n)),
    ).toBe(facts.get("hex i2c_smbus_ioctl_data"));
  });
});

describe.skipIf(skip)("GPIO uAPI v2 layouts against linux/gpio.h", () => {
  it("has the kernel's struct sizes and field offsets", () => {
    expect(num("size gpiochip_info")).toBe(gpio.GPIOCHIP_INFO_SIZE);
    expect(num("size gpio_v2_line_attribute")).toBe(gpio.GPIO_V2_LINE_ATTRIBUTE_SIZE);
    expect(num("size gpio_v2_line_config_attribute")).toBe(gpio.GPIO_V2_LINE_CONFIG_ATTRIBUTE_SIZE);
    expect(num("size gpio_v2_line_config")).toBe(gpio.GPIO_V2_LINE_CONFIG_SIZE);
    expect(num("size gpio_v2_line_request")).toBe(gpio.GPIO_V2_LINE_REQUEST_SIZE);
    expect(num("size gpio_v2_line_info")).toBe(gpio.GPIO_V2_LINE_INFO_SIZE);
    expect(num("size gpio_v2_line_values")).toBe(gpio.GPIO_V2_LINE_VALUES_SIZE);
    expect(num("size gpio_v2_line_event")).toBe(gpio.GPIO_V2_LINE_EVENT_SIZE);
    expect(num("offset gpio_v2_line_request.consumer")).toBe(256);
    expect(num("offset gpio_v2_line_request.config")).toBe(288);
    expect(num("offset gpio_v2_line_request.num_lines")).toBe(560);
    expect(num("offset gpio_v2_line_request.event_buffer_size")).toBe(564);
    expect(num("offset gpio_v2_line_request.fd")).toBe(588);
    expect(num("offset gpio_v2_line_info.offset")).toBe(64);
    expect(num("offset gpio_v2_line_info.flags")).toBe(72);
    expect(num("offset gpio_v2_line_info.attrs")).toBe(80);
    expect(num("offset gpio_v2_line_event.seqno")).toBe(16);
    expect(num("offset gpio_v2_line_event.line_seqno")).toBe(20);
  });

  it("has the kernel's ioctl numbers, flags and ids", () => {
    for (const name of [
      "GPIO_GET_CHIPINFO_IOCTL",
      "GPIO_V2_GET_LINEINFO_IOCTL",
      "GPIO_V2_GET_LINE_IOCTL",
      "GPIO_V2_LINE_SET_CONFIG_IOCTL",
      "GPIO_V2_LINE_GET_VALUES_IOCTL",
      "GPIO_V2_LINE_SET_VALUES_IOCTL",
    ] as const) {
      expect([name, num(`const ${name}`)]).toEqual([name, gpioConsts.get(name)]);
    }
    for (const [flag, value] of Object.entries(gpio.LineFlag)) {
      expect([flag, num(`const GPIO_V2_LINE_FLAG_${flag}`)]).toEqual([flag, Number(value)]);
    }
    for (const [id, value] of Object.entries(gpio.AttrId)) {
      expect([id, num(`const GPIO_V2_LINE_ATTR_ID_${id}`)]).toEqual([id, value]);
    }
    for (const [id, value] of Object.entries(gpio.EventId)) {
      expect([id, num(`const GPIO_V2_LINE_EVENT_${id}`)]).toEqual([id, value]);
    }
  });

  it("encodes a line request (offsets, consumer, flags, debounce and flags attributes) as gcc does", () => {
    const F = gpio.LineFlag;
    const bytes = gpio.encodeLineRequest({
      offsets: [17, 27],
      consumer: "fieldrelay",
      config: {
        flags: F.INPUT | F.EDGE_RISING | F.BIAS_PULL_UP,
        attrs: [
          { id: gpio.AttrId.DEBOUNCE, debounce_us: 5000, mask: 1n },
          { id: gpio.AttrId.FLAGS, flags: F.OUTPUT | F.ACTIVE_LOW, mask: 2n },
        ],
      },
      event_buffer_size: 32,
    });
    expect(hexOf(bytes)).toBe(facts.get("hex gpio_v2_line_request"));
  });

  it("encodes a line config with output values, line values and a line-info query as gcc does", () => {
    const config = gpio.encodeLineConfig({
      flags: gpio.LineFlag.OUTPUT,
      attrs: [{ id: gpio.AttrId.OUTPUT_VALUES, values: 5n, mask: 7n }],
    });
    expect(hexOf(config)).toBe(facts.get("hex gpio_v2_line_config"));
    expect(hexOf(gpio.encodeLineValues(0x8000000000000001n, 0xffffffffffffffffn))).toBe(
      facts.get("hex gpio_v2_line_values"),
    );
    expect(hexOf(gpio.encodeLineInfoQuery(27))).toBe(facts.get("hex gpio_v2_line_info_query"));
  });

  it("decodes chip info, line info and a burst of line events written by C", () => {
    const bytes = (key: string) => new Uint8Array(Buffer.from(facts.get(`hex ${key}`)!, "hex"));
    expect(gpio.decodeChipInfo(bytes("gpiochip_info"))).toEqual({
      name: "gpiochip0",
      label: "pinctrl-bcm2711",
      lines: 58,
    });
    expect(gpio.decodeLineInfo(bytes("gpio_v2_line_info"))).toEqual({
      name: "GPIO17",
      consumer: "fieldrelay",
      offset: 17,
      flags: gpio.LineFlag.USED | gpio.LineFlag.INPUT | gpio.LineFlag.BIAS_PULL_UP,
      debounce_us: 10000,
      output_values: 1n,
    });
    expect(gpio.decodeLineEvents(bytes("gpio_v2_line_event"))).toEqual([
      { timestamp_ns: 1234567890123456789n, id: 1, offset: 17, seqno: 41, line_seqno: 7 },
      { timestamp_ns: 1234567890123999999n, id: 2, offset: 27, seqno: 4294967295, line_seqno: 8 },
    ]);
  });
});

describe.skipIf(skip)("RTC class layouts against linux/rtc.h", () => {
  it("has struct rtc_time's size and offsets and the RTC_SET_TIME / RTC_RD_TIME numbers", () => {
    expect(num("size rtc_time")).toBe(rtc.RTC_TIME_SIZE);
    expect(num("offset rtc_time.tm_sec")).toBe(0);
    expect(num("offset rtc_time.tm_mday")).toBe(12);
    expect(num("offset rtc_time.tm_year")).toBe(20);
    expect(num("offset rtc_time.tm_isdst")).toBe(32);
    expect(num("const RTC_SET_TIME")).toBe(rtc.RTC_SET_TIME);
    expect(num("const RTC_RD_TIME")).toBe(rtc.RTC_RD_TIME);
  });

  it("encodes 2026-11-30T23:08:07Z as the struct rtc_time gcc makes, and decodes it back", () => {
    const ms = Date.UTC(2026, 10, 30, 23, 8, 7);
    const bytes = rtc.encodeRtcTime(ms);
    expect(hexOf(bytes)).toBe(facts.get("hex rtc_time"));
    expect(rtc.decodeRtcTime(bytes)).toBe(ms);
  });
});
