{{ rejected_rows('inventory', 'stock_snapshots', 'stg_inventory__stock_snapshots__validated') }}
