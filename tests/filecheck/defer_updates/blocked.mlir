// RUN: raster-opt %s -p 'defer-updates{function=step_loop block=2}' | filecheck %s
// RUN: raster-opt %s -p 'defer-updates{function=step_loop block=3}' | filecheck %s --check-prefix=BLOCK3
// A data loop as data-loop{cross-step=false} builds it, for one layer z = W x + b
// (W: 5x11) with loss sum_i relu(z_i) g[n, i] and its SGD step over 7 samples:
// d = z > 0 ? g[n, i] : 0, the update of row i skipped when d == 0,
// W[i, :] -= lr * d * x[n, :], b[i] -= lr * d. With block=2: three blocks of two
// steps (each: one pass over W's rows, the Gram table, the two steps), the last
// block's updates, then step 6 as before. A row of 11 f64 is one 64-byte chunk
// (columns 0-7, one vector) and three columns one by one.

func.func @step_loop(%W: memref<5x11xf64>, %b: memref<5xf64>, %x: memref<7x11xf64>, %g: memref<7x5xf64>, %out: memref<7xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cols = arith.constant 11 : index
  %rows = arith.constant 5 : index
  %steps = arith.constant 7 : index
  %zero = arith.constant 0.000000e+00 : f64
  %lr = arith.constant 1.000000e-01 : f64
  %z = memref.alloc() {alignment = 64 : i64} : memref<5xf64>
  scf.for %n = %c0 to %steps step %c1 {
    // forward: z = W x[n] + b
    scf.for %i = %c0 to %rows step %c1 {
      %dot = scf.for %j = %c0 to %cols step %c1 iter_args(%acc = %zero) -> (f64) {
        %w = memref.load %W[%i, %j] : memref<5x11xf64>
        %xj = memref.load %x[%n, %j] : memref<7x11xf64>
        %p = arith.mulf %w, %xj : f64
        %s = arith.addf %acc, %p : f64
        scf.yield %s : f64
      }
      %bi = memref.load %b[%i] : memref<5xf64>
      %a = arith.addf %dot, %bi : f64
      memref.store %a, %z[%i] : memref<5xf64>
    }
    // loss
    %loss = scf.for %i2 = %c0 to %rows step %c1 iter_args(%lacc = %zero) -> (f64) {
      %a2 = memref.load %z[%i2] : memref<5xf64>
      %r = arith.maximumf %a2, %zero : f64
      %gi = memref.load %g[%n, %i2] : memref<7x5xf64>
      %t = arith.mulf %r, %gi : f64
      %ls = arith.addf %lacc, %t : f64
      scf.yield %ls : f64
    }
    memref.store %loss, %out[%n] : memref<7xf64>
    // update: a rank-one update of W by x[n], guarded as skip-zero-updates guards it
    scf.for %i3 = %c0 to %rows step %c1 {
      %a3 = memref.load %z[%i3] : memref<5xf64>
      %on = arith.cmpf ogt, %a3, %zero : f64
      %g3 = memref.load %g[%n, %i3] : memref<7x5xf64>
      %d = arith.select %on, %g3, %zero : f64
      %nz = arith.cmpf une, %d, %zero : f64
      scf.if %nz {
        scf.for %j3 = %c0 to %cols step %c1 {
          %xu = memref.load %x[%n, %j3] : memref<7x11xf64>
          %wold = memref.load %W[%i3, %j3] : memref<5x11xf64>
          %dx = arith.mulf %d, %xu : f64
          %step = arith.mulf %lr, %dx : f64
          %wnew = arith.subf %wold, %step : f64
          memref.store %wnew, %W[%i3, %j3] : memref<5x11xf64>
        }
      }
      %db = arith.mulf %lr, %d : f64
      %bold = memref.load %b[%i3] : memref<5xf64>
      %bnew = arith.subf %bold, %db : f64
      memref.store %bnew, %b[%i3] : memref<5xf64>
    }
  }
  func.return
}

// CHECK-LABEL: func.func @step_loop(
// CHECK-SAME:      attributes {raster.schedule = "defer-updates{block=2}"} {
// CHECK-DAG:     %[[F0:[0-9]+]] = arith.constant 0.000000e+00 : f64
// CHECK-DAG:     %[[I0:[0-9]+]] = arith.constant 0 : index
// CHECK-DAG:     %[[I1:[0-9]+]] = arith.constant 1 : index
// CHECK-DAG:     %[[K:[0-9]+]] = arith.constant 2 : index
// CHECK-DAG:     %[[LAST:[0-9]+]] = arith.constant 4 : index
// CHECK-DAG:     %[[ROWS:[0-9]+]] = arith.constant 5 : index
// CHECK-DAG:     %[[BLOCKED:[0-9]+]] = arith.constant 6 : index
// CHECK-DAG:     %[[LANES:[0-9]+]] = arith.constant 8 : index
// CHECK-DAG:     %[[COLS:[0-9]+]] = arith.constant 11 : index

// E[s, i] (the coefficients of the pending updates), P[s, i] (the block's dot
// products), G[s, k] (the Gram table) and the list of non-zero chunks, before the loop.
// CHECK:         %z = memref.alloc()
// CHECK-NEXT:    %[[E:[0-9]+]] = memref.alloc() {alignment = 64 : i64} : memref<2x5xf64>
// CHECK-NEXT:    %[[P:[0-9]+]] = memref.alloc() {alignment = 64 : i64} : memref<2x5xf64>
// CHECK-NEXT:    %[[G:[0-9]+]] = memref.alloc() {alignment = 64 : i64} : memref<2x2xf64>
// CHECK-NEXT:    %[[CHUNKS:[0-9]+]] = memref.alloc() {alignment = 64 : i64} : memref<1xi64>

// E = 0: nothing pending before the first block.
// CHECK-NEXT:    scf.for %[[ZS:[0-9]+]] = %[[I0]] to %[[K]] step %[[I1]] {
// CHECK-NEXT:      scf.for %[[ZI:[0-9]+]] = %[[I0]] to %[[ROWS]] step %[[I1]] {
// CHECK-NEXT:        memref.store %[[F0]], %[[E]][%[[ZS]], %[[ZI]]] : memref<2x5xf64>
// CHECK-NEXT:      }
// CHECK-NEXT:    }

// The blocks: t0 = 0, 2, 4. The previous block's samples are t0 - 2 and t0 - 1
// (for block 0, whose E is zero, t0 and t0 + 1).
// CHECK-NEXT:    scf.for %[[T0:[0-9]+]] = %[[I0]] to %[[BLOCKED]] step %[[K]] {
// CHECK-NEXT:      %[[FIRST:[0-9]+]] = arith.cmpi eq, %[[T0]], %[[I0]] : index
// CHECK-NEXT:      %[[BACK:[0-9]+]] = arith.subi %[[T0]], %[[K]] : index
// CHECK-NEXT:      %[[PREV:[0-9]+]] = arith.select %[[FIRST]], %[[T0]], %[[BACK]] : index
// CHECK-NEXT:      %[[U0:[0-9]+]] = arith.addi %[[PREV]], %[[I0]] : index
// CHECK-NEXT:      %[[U1:[0-9]+]] = arith.addi %[[PREV]], %[[I1]] : index
// CHECK-NEXT:      %[[X0:[0-9]+]] = arith.addi %[[T0]], %[[I0]] : index
// CHECK-NEXT:      %[[X1:[0-9]+]] = arith.addi %[[T0]], %[[I1]] : index

// The chunks where one of the four samples is non-zero.
// CHECK-NEXT:      %[[COUNT:[0-9]+]] = scf.for %[[Q:[0-9]+]] = %[[I0]] to %[[LANES]] step %[[LANES]] iter_args({{.*}}) -> (index) {
// CHECK-NEXT:        vector.load %x[%[[U0]], %[[Q]]] : memref<7x11xf64>, vector<8xf64>
// CHECK:             vector.load %x[%[[U1]], %[[Q]]]
// CHECK:             vector.load %x[%[[X0]], %[[Q]]]
// CHECK:             vector.load %x[%[[X1]], %[[Q]]]
// CHECK:             vector.reduction <or>
// CHECK:             memref.store %{{[0-9]+}}, %[[CHUNKS]]
// CHECK:           }

// The row pass: a row with a pending coefficient gets the previous block's two
// updates, in step order, and is stored back; both branches compute the dot
// products of the (updated) row with x[t0] and x[t0 + 1].
// CHECK-NEXT:      scf.for %[[ROW:[0-9]+]] = %[[I0]] to %[[ROWS]] step %[[I1]] {
// CHECK-NEXT:        %[[E0:[0-9]+]] = memref.load %[[E]][%[[I0]], %[[ROW]]] : memref<2x5xf64>
// CHECK-NEXT:        %[[E1:[0-9]+]] = memref.load %[[E]][%[[I1]], %[[ROW]]] : memref<2x5xf64>
// CHECK-NEXT:        %[[NZ0:[0-9]+]] = arith.cmpf une, %[[E0]], %[[F0]] : f64
// CHECK-NEXT:        %[[NZ1:[0-9]+]] = arith.cmpf une, %[[E1]], %[[F0]] : f64
// CHECK-NEXT:        %[[PENDING:[0-9]+]] = arith.ori %[[NZ0]], %[[NZ1]] : i1
// CHECK-NEXT:        %[[D0:[0-9]+]], %[[D1:[0-9]+]] = scf.if %[[PENDING]] -> (f64, f64) {
// CHECK:               %{{[0-9]+}}, %{{[0-9]+}} = scf.for %[[C:[0-9]+]] = %[[I0]] to %[[COUNT]] step %[[I1]] iter_args
// CHECK-NEXT:            %[[QI:[0-9]+]] = memref.load %[[CHUNKS]][%[[C]]] : memref<1xi64>
// CHECK-NEXT:            %[[Q0:[0-9]+]] = arith.index_cast %[[QI]] : i64 to index
// CHECK-NEXT:            %[[WV:[0-9]+]] = vector.load %W[%[[ROW]], %[[Q0]]] : memref<5x11xf64>, vector<8xf64>
// CHECK:                 vector.load %x[%[[U0]], %[[Q0]]]
// CHECK:                 vector.load %x[%[[U1]], %[[Q0]]]
// CHECK:                 %[[WV2:[0-9]+]] = arith.subf
// CHECK-NEXT:            vector.store %[[WV2]], %W[%[[ROW]], %[[Q0]]] : memref<5x11xf64>, vector<8xf64>
// CHECK-NEXT:            vector.load %x[%[[X0]], %[[Q0]]]
// CHECK:                 vector.load %x[%[[X1]], %[[Q0]]]
// CHECK:               }
// CHECK-NEXT:          %[[R0:[0-9]+]] = vector.reduction <add>
// CHECK-NEXT:          %[[R1:[0-9]+]] = vector.reduction <add>

// Columns 8 to 10 one by one: W[i, j] - E[0, i] x[t0 - 2, j] - E[1, i] x[t0 - 1, j],
// then the dot products with x[t0] and x[t0 + 1].
// CHECK-NEXT:          %{{[0-9]+}}, %{{[0-9]+}} = scf.for %[[J:[0-9]+]] = %[[LANES]] to %[[COLS]] step %[[I1]] iter_args(%[[A0:[0-9]+]] = %[[R0]], %[[A1:[0-9]+]] = %[[R1]]) -> (f64, f64) {
// CHECK-NEXT:            %[[W:[0-9]+]] = memref.load %W[%[[ROW]], %[[J]]] : memref<5x11xf64>
// CHECK-NEXT:            %[[XU0:[0-9]+]] = memref.load %x[%[[U0]], %[[J]]] : memref<7x11xf64>
// CHECK-NEXT:            %[[T0U:[0-9]+]] = arith.mulf %[[E0]], %[[XU0]] : f64
// CHECK-NEXT:            %[[WA:[0-9]+]] = arith.subf %[[W]], %[[T0U]] : f64
// CHECK-NEXT:            %[[XU1:[0-9]+]] = memref.load %x[%[[U1]], %[[J]]] : memref<7x11xf64>
// CHECK-NEXT:            %[[T1U:[0-9]+]] = arith.mulf %[[E1]], %[[XU1]] : f64
// CHECK-NEXT:            %[[WB:[0-9]+]] = arith.subf %[[WA]], %[[T1U]] : f64
// CHECK-NEXT:            memref.store %[[WB]], %W[%[[ROW]], %[[J]]] : memref<5x11xf64>
// CHECK-NEXT:            %[[XD0:[0-9]+]] = memref.load %x[%[[X0]], %[[J]]] : memref<7x11xf64>
// CHECK-NEXT:            %[[M0:[0-9]+]] = arith.mulf %[[WB]], %[[XD0]] : f64
// CHECK-NEXT:            %[[S0:[0-9]+]] = arith.addf %[[A0]], %[[M0]] : f64
// CHECK-NEXT:            %[[XD1:[0-9]+]] = memref.load %x[%[[X1]], %[[J]]] : memref<7x11xf64>
// CHECK-NEXT:            %[[M1:[0-9]+]] = arith.mulf %[[WB]], %[[XD1]] : f64
// CHECK-NEXT:            %[[S1:[0-9]+]] = arith.addf %[[A1]], %[[M1]] : f64
// CHECK-NEXT:            scf.yield %[[S0]], %[[S1]] : f64, f64
// CHECK-NEXT:          }
// CHECK-NEXT:          scf.yield

// Nothing pending: the dot products only, W is not written.
// CHECK-NEXT:        } else {
// CHECK-NOT:           store
// CHECK:               scf.for %{{[0-9]+}} = %[[I0]] to %[[COUNT]] step %[[I1]] iter_args
// CHECK-NOT:           store
// CHECK:               scf.for %[[J2:[0-9]+]] = %[[LANES]] to %[[COLS]] step %[[I1]] iter_args
// CHECK-NOT:           store
// CHECK:                 memref.load %x[%[[X0]], %[[J2]]]
// CHECK-NOT:           store
// CHECK:                 memref.load %x[%[[X1]], %[[J2]]]
// CHECK-NOT:           store
// CHECK:                 scf.yield %{{[0-9]+}}, %{{[0-9]+}} : f64, f64
// CHECK-NEXT:          }
// CHECK-NEXT:          scf.yield
// CHECK-NEXT:        }
// CHECK-NEXT:        memref.store %[[D0]], %[[P]][%[[I0]], %[[ROW]]] : memref<2x5xf64>
// CHECK-NEXT:        memref.store %[[D1]], %[[P]][%[[I1]], %[[ROW]]] : memref<2x5xf64>
// CHECK-NEXT:      }

// The Gram table: G[s, k] = x[t0 + k] . x[t0 + s] for k < s.
// CHECK-NEXT:      scf.for %[[GS:[0-9]+]] = %[[I0]] to %[[K]] step %[[I1]] {
// CHECK-NEXT:        scf.for %[[GK:[0-9]+]] = %[[I0]] to %[[GS]] step %[[I1]] {
// CHECK-NEXT:          %[[RX:[0-9]+]] = arith.addi %[[T0]], %[[GS]] : index
// CHECK-NEXT:          %[[RU:[0-9]+]] = arith.addi %[[T0]], %[[GK]] : index
// CHECK-NEXT:          %[[GV:[0-9]+]] = scf.for %[[GJ:[0-9]+]] = %[[I0]] to %[[COLS]] step %[[I1]] iter_args
// CHECK-NEXT:            memref.load %x[%[[RU]], %[[GJ]]]
// CHECK-NEXT:            memref.load %x[%[[RX]], %[[GJ]]]
// CHECK-NEXT:            arith.mulf
// CHECK-NEXT:            arith.addf
// CHECK-NEXT:            scf.yield
// CHECK-NEXT:          }
// CHECK-NEXT:          memref.store %[[GV]], %[[G]][%[[GS]], %[[GK]]] : memref<2x2xf64>
// CHECK-NEXT:        }
// CHECK-NEXT:      }

// The block's steps, n = t0 + s. The forward pass takes P[s, i] less the share
// of the updates still pending, sum_(k<s) E[k, i] G[s, k]; W is not read.
// CHECK-NEXT:      scf.for %[[S:[0-9]+]] = %[[I0]] to %[[K]] step %[[I1]] {
// CHECK-NEXT:        %n = arith.addi %[[T0]], %[[S]] : index
// CHECK-NEXT:        scf.for %i = %c0 to %rows step %c1 {
// CHECK-NEXT:          %[[CORR:[0-9]+]] = scf.for %[[CK:[0-9]+]] = %[[I0]] to %[[S]] step %[[I1]] iter_args(%[[CA:[0-9]+]] = %[[F0]]) -> (f64) {
// CHECK-NEXT:            %[[EK:[0-9]+]] = memref.load %[[E]][%[[CK]], %i] : memref<2x5xf64>
// CHECK-NEXT:            %[[GSK:[0-9]+]] = memref.load %[[G]][%[[S]], %[[CK]]] : memref<2x2xf64>
// CHECK-NEXT:            %[[EG:[0-9]+]] = arith.mulf %[[EK]], %[[GSK]] : f64
// CHECK-NEXT:            %[[CN:[0-9]+]] = arith.addf %[[CA]], %[[EG]] : f64
// CHECK-NEXT:            scf.yield %[[CN]] : f64
// CHECK-NEXT:          }
// CHECK-NEXT:          %[[PS:[0-9]+]] = memref.load %[[P]][%[[S]], %i] : memref<2x5xf64>
// CHECK-NEXT:          %dot = arith.subf %[[PS]], %[[CORR]] : f64
// CHECK-NEXT:          %bi = memref.load %b[%i] : memref<5xf64>
// CHECK-NEXT:          %a = arith.addf %dot, %bi : f64
// CHECK-NEXT:          memref.store %a, %z[%i] : memref<5xf64>
// CHECK-NEXT:        }
// CHECK-NEXT:        %loss = scf.for %i2 = %c0 to %rows step %c1
// CHECK:             memref.load %g[%n, %i2]
// CHECK:           memref.store %loss, %out[%n] : memref<7xf64>

// The update stores its coefficient lr * d in E[s, i] instead of updating W
// (a zero coefficient is what the guard skipped); b is updated as before.
// CHECK-NEXT:        scf.for %i3 = %c0 to %rows step %c1 {
// CHECK:               %d = arith.select %on, %g3, %zero : f64
// CHECK-NEXT:          %nz = arith.cmpf une, %d, %zero : f64
// CHECK-NEXT:          %[[COEF:[0-9]+]] = arith.mulf %lr, %d : f64
// CHECK-NEXT:          memref.store %[[COEF]], %[[E]][%[[S]], %i3] : memref<2x5xf64>
// CHECK-NEXT:          %db = arith.mulf %lr, %d : f64
// CHECK-NEXT:          %bold = memref.load %b[%i3] : memref<5xf64>
// CHECK-NEXT:          %bnew = arith.subf %bold, %db : f64
// CHECK-NEXT:          memref.store %bnew, %b[%i3] : memref<5xf64>
// CHECK-NEXT:        }
// CHECK-NEXT:      }
// CHECK-NEXT:    }

// The last block's updates (samples 4 and 5), without dot products.
// CHECK-NEXT:    %[[LU0:[0-9]+]] = arith.addi %[[LAST]], %[[I0]] : index
// CHECK-NEXT:    %[[LU1:[0-9]+]] = arith.addi %[[LAST]], %[[I1]] : index
// CHECK-NEXT:    %[[LCOUNT:[0-9]+]] = scf.for
// CHECK:         scf.for %[[LROW:[0-9]+]] = %[[I0]] to %[[ROWS]] step %[[I1]] {
// CHECK-NEXT:      %[[LE0:[0-9]+]] = memref.load %[[E]][%[[I0]], %[[LROW]]] : memref<2x5xf64>
// CHECK-NEXT:      %[[LE1:[0-9]+]] = memref.load %[[E]][%[[I1]], %[[LROW]]] : memref<2x5xf64>
// CHECK:           scf.if %{{[0-9]+}} {
// CHECK:             scf.for %{{[0-9]+}} = %[[I0]] to %[[LCOUNT]] step %[[I1]] {
// CHECK:               %[[LQ:[0-9]+]] = arith.index_cast
// CHECK-NEXT:          vector.load %W[%[[LROW]], %[[LQ]]]
// CHECK-NEXT:          vector.load %x[%[[LU0]], %[[LQ]]]
// CHECK-NEXT:          arith.mulf
// CHECK-NEXT:          arith.subf
// CHECK-NEXT:          vector.load %x[%[[LU1]], %[[LQ]]]
// CHECK-NEXT:          arith.mulf
// CHECK-NEXT:          %[[LWV:[0-9]+]] = arith.subf
// CHECK-NEXT:          vector.store %[[LWV]], %W[%[[LROW]], %[[LQ]]] : memref<5x11xf64>, vector<8xf64>
// CHECK-NEXT:        }
// CHECK-NEXT:        scf.for %[[LJ:[0-9]+]] = %[[LANES]] to %[[COLS]] step %[[I1]] {
// CHECK-NEXT:          memref.load %W[%[[LROW]], %[[LJ]]]
// CHECK-NEXT:          memref.load %x[%[[LU0]], %[[LJ]]]
// CHECK-NEXT:          arith.mulf %[[LE0]]
// CHECK-NEXT:          arith.subf
// CHECK-NEXT:          memref.load %x[%[[LU1]], %[[LJ]]]
// CHECK-NEXT:          arith.mulf %[[LE1]]
// CHECK-NEXT:          %[[LW:[0-9]+]] = arith.subf
// CHECK-NEXT:          memref.store %[[LW]], %W[%[[LROW]], %[[LJ]]] : memref<5x11xf64>
// CHECK-NEXT:        }
// CHECK-NEXT:      }
// CHECK-NEXT:    }

// The tail: step 6 as in the input loop (W read by the forward pass, updated in place).
// CHECK-NEXT:    scf.for %[[TN:[a-z0-9_]+]] = %[[BLOCKED]] to %steps step %c1 {
// CHECK-NEXT:      scf.for %[[TI:[a-z0-9_]+]] = %c0 to %rows step %c1 {
// CHECK-NEXT:        scf.for %j = %c0 to %cols step %c1 iter_args
// CHECK-NEXT:          memref.load %W[%[[TI]], %j]
// CHECK-NEXT:          memref.load %x[%[[TN]], %j]
// CHECK:           scf.if %nz_1 {
// CHECK-NEXT:        scf.for %j3 = %c0 to %cols step %c1 {
// CHECK:               memref.store %wnew, %W[%i3_1, %j3] : memref<5x11xf64>
// CHECK:         func.return

// block=3: two blocks of three steps, then step 6.
// BLOCK3:        raster.schedule = "defer-updates{block=3}"
// BLOCK3-DAG:    %[[K3:[0-9]+]] = arith.constant 3 : index
// BLOCK3-DAG:    %[[B6:[0-9]+]] = arith.constant 6 : index
// BLOCK3-DAG:    %[[Z3:[0-9]+]] = arith.constant 0 : index
// BLOCK3:        %[[E3:[0-9]+]] = memref.alloc() {alignment = 64 : i64} : memref<3x5xf64>
// BLOCK3-NEXT:   memref.alloc() {alignment = 64 : i64} : memref<3x5xf64>
// BLOCK3-NEXT:   memref.alloc() {alignment = 64 : i64} : memref<3x3xf64>
// BLOCK3:        scf.for %{{[0-9]+}} = %[[Z3]] to %[[B6]] step %[[K3]] {
// BLOCK3-COUNT-3:  memref.load %[[E3]][
// BLOCK3:          scf.if %{{[0-9]+}} -> (f64, f64, f64) {
// BLOCK3:        scf.for %n_1 = %[[B6]] to %steps step %c1 {
